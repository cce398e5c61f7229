// Unit test SQL (unit_test.h).

#include "transform/unit_test.h"

#include <fmt/format.h>

#include <algorithm>

#include "transform/project.h"
#include "transform/seed_file.h"

namespace pdv::transform {
namespace {

std::string Literal(const nlohmann::json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number()) return v.dump();
  std::string s = v.is_string() ? v.get<std::string>() : v.dump();
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// The rows as a list of column -> value (csv cells are text, an empty one null).
Result<std::vector<std::vector<std::pair<std::string, nlohmann::json>>>> Rows(
    const nlohmann::json& entry) {
  std::string format = entry.value("format", "dict");
  std::vector<std::vector<std::pair<std::string, nlohmann::json>>> rows;
  const nlohmann::json& given = entry.contains("rows") ? entry["rows"] : nlohmann::json::array();
  if (format == "dict") {
    if (given.is_null()) return rows;
    if (!given.is_array()) return Status::Error("rows must be a list of mappings");
    for (const auto& r : given) {
      if (!r.is_object()) return Status::Error("each row must be a mapping of column: value");
      std::vector<std::pair<std::string, nlohmann::json>> row;
      for (const auto& [k, v] : r.items()) row.emplace_back(k, v);
      rows.push_back(std::move(row));
    }
    return rows;
  }
  if (format == "csv") {
    if (!given.is_string()) return Status::Error("csv rows must be a text block");
    auto csv = SeedFile::Parse(given.get<std::string>(), "rows", {});
    if (!csv.ok()) return csv.status();
    for (size_t r = 0; r < csv->rows.size(); ++r) {
      std::vector<std::pair<std::string, nlohmann::json>> row;
      for (size_t i = 0; i < csv->columns.size() && i < csv->rows[r].size(); ++i) {
        bool null = r < csv->nulls.size() && i < csv->nulls[r].size() && csv->nulls[r][i];
        row.emplace_back(csv->columns[i],
                         null ? nlohmann::json() : nlohmann::json(csv->rows[r][i]));
      }
      rows.push_back(std::move(row));
    }
    return rows;
  }
  return Status::Error(fmt::format("format '{}' is not one of dict, csv, sql", format));
}

}  // namespace

Result<std::vector<std::string>> FixtureColumns(const nlohmann::json& entry) {
  auto rows = Rows(entry);
  if (!rows.ok()) return rows.status();
  std::vector<std::string> out;
  for (const auto& row : *rows) {
    for (const auto& [k, v] : row) {
      if (std::find(out.begin(), out.end(), k) == out.end()) out.push_back(k);
    }
  }
  return out;
}

Result<std::string> FixtureSql(const nlohmann::json& entry, const std::vector<TypedColumn>& columns,
                               bool only_named) {
  if (entry.value("format", "dict") == "sql") {
    if (!entry.contains("rows") || !entry["rows"].is_string())
      return Status::Error("sql rows must be a query");
    return entry["rows"].get<std::string>();
  }
  auto rows = Rows(entry);
  if (!rows.ok()) return rows.status();
  auto named = FixtureColumns(entry);
  if (!named.ok()) return named.status();
  std::vector<TypedColumn> out_columns;
  if (columns.empty()) {
    for (const auto& n : *named) out_columns.push_back({n, ""});
  } else {
    for (const auto& n : *named) {
      bool known = std::any_of(columns.begin(), columns.end(),
                               [&](const TypedColumn& c) { return c.name == n; });
      if (!known) return Status::Error(fmt::format("column '{}' is not in the relation", n));
    }
    for (const auto& c : columns) {
      if (!only_named || std::find(named->begin(), named->end(), c.name) != named->end())
        out_columns.push_back(c);
    }
    if (only_named) {  // in the rows' order, as they are compared
      std::vector<TypedColumn> ordered;
      for (const auto& n : *named) {
        for (const auto& c : out_columns) {
          if (c.name == n) ordered.push_back(c);
        }
      }
      out_columns = std::move(ordered);
    }
  }
  auto cell = [](const TypedColumn& c, const std::string& value) {
    return c.type.empty()
               ? fmt::format("{} as {}", value, QuoteIdentifier(c.name))
               : fmt::format("cast({} as {}) as {}", value, c.type, QuoteIdentifier(c.name));
  };
  std::vector<std::string> selects;
  for (const auto& row : *rows) {
    std::string sel;
    for (const auto& c : out_columns) {
      std::string value = "null";
      for (const auto& [k, v] : row) {
        if (k == c.name) value = Literal(v);
      }
      sel += (sel.empty() ? "select " : ", ") + cell(c, value);
    }
    selects.push_back(sel);
  }
  if (selects.empty()) {  // no rows: the columns, typed, and nothing in them
    std::string sel;
    for (const auto& c : out_columns) sel += (sel.empty() ? "select " : ", ") + cell(c, "null");
    if (sel.empty()) return Status::Error("no rows and no columns");
    return sel + " where false";
  }
  std::string sql;
  for (size_t i = 0; i < selects.size(); ++i) sql += (i ? "\nunion all\n" : "") + selects[i];
  return sql;
}

std::string UnitDiffSql(const std::string& actual_table, const std::string& expected_sql,
                        const std::vector<std::string>& columns) {
  std::string cols;
  for (const auto& c : columns) cols += (cols.empty() ? "" : ", ") + QuoteIdentifier(c);
  return fmt::format(
      "with __pdv_expected as (\n{0}\n), __pdv_actual as (select {1} from {2})\n"
      "select 'missing' as __pdv_diff, * from (select {1} from __pdv_expected except all "
      "select {1} from __pdv_actual) m\nunion all\n"
      "select 'unexpected' as __pdv_diff, * from (select {1} from __pdv_actual except all "
      "select {1} from __pdv_expected) u",
      expected_sql, cols, actual_table);
}

}  // namespace pdv::transform
