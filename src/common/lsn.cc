#include "common/lsn.h"

#include <fmt/format.h>

namespace pdv {

std::string LsnText(uint64_t lsn) {
  return fmt::format("{:X}/{:X}", static_cast<uint32_t>(lsn >> 32), static_cast<uint32_t>(lsn));
}

std::optional<uint64_t> ParseLsn(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size())
    return std::nullopt;
  auto hex = [](std::string_view s, uint64_t* out) {
    if (s.size() > 8) return false;
    uint64_t v = 0;
    for (char c : s) {
      int d = (c >= '0' && c <= '9')   ? c - '0'
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10
              : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                                       : -1;
      if (d < 0) return false;
      v = v * 16 + static_cast<uint64_t>(d);
    }
    *out = v;
    return true;
  };
  uint64_t hi = 0, lo = 0;
  if (!hex(text.substr(0, slash), &hi) || !hex(text.substr(slash + 1), &lo)) return std::nullopt;
  return (hi << 32) | lo;
}

}  // namespace pdv
