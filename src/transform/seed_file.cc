#include "transform/seed_file.h"

#include <fmt/format.h>

#include <regex>

namespace pdv::transform {
namespace {

SeedColumnType InferType(const std::vector<std::vector<std::string>>& rows,
                         const std::vector<std::vector<bool>>& nulls, size_t col) {
  static const std::regex kInt("-?[0-9]+");
  static const std::regex kNum("-?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][-+]?[0-9]+)?");
  static const std::regex kBool("(?:true|false|TRUE|FALSE|True|False)");
  static const std::regex kDate("[0-9]{4}-[0-9]{2}-[0-9]{2}");
  static const std::regex kTs(
      "[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]+)?)?");
  bool is_int = true, is_num = true, is_bool = true, is_date = true, is_ts = true, any = false;
  bool big = false;
  for (size_t r = 0; r < rows.size(); ++r) {
    if (nulls[r][col]) continue;
    const std::string& v = rows[r][col];
    any = true;
    if (is_int && !std::regex_match(v, kInt)) is_int = false;
    if (is_int && v.size() > 9) big = true;
    if (is_num && !std::regex_match(v, kNum)) is_num = false;
    if (is_bool && !std::regex_match(v, kBool)) is_bool = false;
    if (is_date && !std::regex_match(v, kDate)) is_date = false;
    if (is_ts && !std::regex_match(v, kTs)) is_ts = false;
  }
  if (!any) return SeedColumnType::kText;
  if (is_int) return big ? SeedColumnType::kBigInteger : SeedColumnType::kInteger;
  if (is_num) return SeedColumnType::kNumber;
  if (is_bool) return SeedColumnType::kBoolean;
  if (is_date) return SeedColumnType::kDate;
  if (is_ts) return SeedColumnType::kTimestamp;
  return SeedColumnType::kText;
}

}  // namespace

Result<SeedFile> SeedFile::Parse(const std::string& text, const std::string& name,
                                 const std::map<std::string, std::string>& column_types,
                                 char delimiter) {
  SeedFile f;
  std::vector<std::vector<std::string>> records;
  std::vector<std::vector<bool>> quoted;
  std::vector<int> lines;
  std::vector<std::string> rec;
  std::vector<bool> rec_quoted;
  std::string field;
  bool in_quotes = false, was_quoted = false, any = false;
  int line = 1, rec_line = 1;
  auto end_field = [&]() {
    rec.push_back(field);
    rec_quoted.push_back(was_quoted);
    field.clear();
    was_quoted = false;
  };
  auto end_record = [&]() {
    end_field();
    if (!(rec.size() == 1 && rec[0].empty() && !rec_quoted[0])) {
      records.push_back(rec);
      quoted.push_back(rec_quoted);
      lines.push_back(rec_line);
    }
    rec.clear();
    rec_quoted.clear();
    rec_line = line;
  };
  // A UTF-8 byte order mark (spreadsheet exports) is not part of the first column's name.
  const size_t start = text.starts_with("\xEF\xBB\xBF") ? 3 : 0;
  for (size_t i = start; i < text.size(); ++i) {
    char c = text[i];
    any = true;
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        if (c == '\n') ++line;
        field += c;
      }
    } else if (c == '"' && field.empty()) {
      in_quotes = true;
      was_quoted = true;
    } else if (c == delimiter) {
      end_field();
    } else if (c == '\n') {
      ++line;
      end_record();
    } else if (c != '\r') {
      field += c;
    }
  }
  if (in_quotes)
    return Status::Error(fmt::format("{}:{}: unterminated quoted field", name, rec_line));
  if (any && (!field.empty() || !rec.empty())) end_record();
  if (records.empty()) return Status::Error(fmt::format("{}: empty seed (no header row)", name));
  f.columns = records[0];
  for (size_t c = 0; c < f.columns.size(); ++c) {
    if (f.columns[c].empty())
      return Status::Error(fmt::format("{}:1: column {} has no name", name, c + 1));
  }
  for (size_t r = 1; r < records.size(); ++r) {
    if (records[r].size() != f.columns.size()) {
      return Status::Error(fmt::format("{}:{}: {} fields, the header has {}", name, lines[r],
                                       records[r].size(), f.columns.size()));
    }
    std::vector<bool> n;
    for (size_t c = 0; c < records[r].size(); ++c)
      n.push_back(records[r][c].empty() && !quoted[r][c]);
    f.rows.push_back(records[r]);
    f.nulls.push_back(std::move(n));
  }
  for (size_t c = 0; c < f.columns.size(); ++c) {
    auto it = column_types.find(f.columns[c]);
    f.kinds.push_back(InferType(f.rows, f.nulls, c));
    f.types.push_back(it != column_types.end() ? it->second : std::string());
  }
  return f;
}

std::string SeedFile::CopyData() const {
  std::string out;
  for (size_t r = 0; r < rows.size(); ++r) {
    for (size_t c = 0; c < rows[r].size(); ++c) {
      if (c) out += ',';
      if (nulls[r][c]) continue;
      out += '"';
      for (char ch : rows[r][c]) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
      out += '"';
    }
    out += '\n';
  }
  return out;
}

std::vector<std::string> SeedFile::SqlTypes(
    const std::function<std::string(SeedColumnType)>& type_name) const {
  std::vector<std::string> out;
  for (size_t c = 0; c < types.size(); ++c)
    out.push_back(types[c].empty() ? type_name(kinds[c]) : types[c]);
  return out;
}

}  // namespace pdv::transform
