#include "pg/copy_text.h"

#include <fmt/format.h>

namespace pdv::pg {
namespace {

bool IsOctal(char c) { return c >= '0' && c <= '7'; }
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Status CopyTextLine::Parse(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  fields_.clear();
  decoded_.clear();
  // Decoding never lengthens a field: the views into decoded_ never move.
  decoded_.reserve(line.size());
  size_t start = 0;
  while (true) {
    size_t end = line.find('\t', start);
    std::string_view raw = line.substr(start, end == std::string_view::npos ? end : end - start);
    if (raw == "\\N") {
      fields_.push_back({.text = {}, .null = true});
    } else if (raw.find('\\') == std::string_view::npos) {
      fields_.push_back({.text = raw});
    } else {
      const size_t from = decoded_.size();
      for (size_t i = 0; i < raw.size(); ++i) {
        char c = raw[i];
        if (c != '\\') {
          decoded_.push_back(c);
          continue;
        }
        if (++i == raw.size()) {
          return Status::Error(
              fmt::format("COPY text: a lone backslash ends column {}", fields_.size() + 1));
        }
        switch (char e = raw[i]) {
          case 'b':
            decoded_.push_back('\b');
            break;
          case 'f':
            decoded_.push_back('\f');
            break;
          case 'n':
            decoded_.push_back('\n');
            break;
          case 'r':
            decoded_.push_back('\r');
            break;
          case 't':
            decoded_.push_back('\t');
            break;
          case 'v':
            decoded_.push_back('\v');
            break;
          case 'x': {
            int v = i + 1 < raw.size() ? HexValue(raw[i + 1]) : -1;
            if (v < 0) {  // PostgreSQL reads "\x" without a hex digit as "x"
              decoded_.push_back('x');
              break;
            }
            ++i;
            if (i + 1 < raw.size() && HexValue(raw[i + 1]) >= 0) v = v * 16 + HexValue(raw[++i]);
            decoded_.push_back(static_cast<char>(v));
            break;
          }
          default:
            if (IsOctal(e)) {
              int v = e - '0';
              for (int k = 0; k < 2 && i + 1 < raw.size() && IsOctal(raw[i + 1]); ++k) {
                v = v * 8 + (raw[++i] - '0');
              }
              decoded_.push_back(static_cast<char>(v & 0xff));
            } else {
              decoded_.push_back(e);  // "\\" and any other escaped character: itself
            }
        }
      }
      fields_.push_back({.text = std::string_view(decoded_).substr(from)});
    }
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return Status::Ok();
}

}  // namespace pdv::pg
