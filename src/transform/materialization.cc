#include "transform/materialization.h"

#include <fmt/format.h>

#include <cctype>

#include "transform/project.h"

namespace pdv::transform {

std::string RelationRef::Quoted() const {
  return QuoteIdentifier(schema) + "." + QuoteIdentifier(identifier);
}

std::string SuffixedName(const std::string& identifier, const std::string& suffix) {
  // PostgreSQL cuts names at 63 bytes: cut the base instead, so that <name>__dbt_tmp and
  // <name>__dbt_backup of a long name stay two names.
  constexpr size_t kMaxName = 63;
  std::string base = identifier;
  if (base.size() + suffix.size() > kMaxName) base.resize(kMaxName - suffix.size());
  return base + suffix;
}

std::string RelationRef::QuotedWithSuffix(const std::string& suffix) const {
  return QuoteIdentifier(schema) + "." + QuoteIdentifier(SuffixedName(identifier, suffix));
}

namespace {

std::string Join(const std::vector<std::string>& items, const std::string& sep,
                 const std::string& prefix = "") {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + prefix + items[i];
  return out;
}

std::vector<std::string> Quoted(const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (const auto& n : names) out.push_back(QuoteIdentifier(n));
  return out;
}

}  // namespace

std::string IndexSql(const RelationRef& rel, const nlohmann::json& index) {
  std::vector<std::string> cols;
  if (index.contains("columns")) {
    for (const auto& c : index["columns"]) cols.push_back(c.get<std::string>());
  }
  bool unique = index.value("unique", false);
  std::string type = index.value("type", "");
  return fmt::format("create {}index on {}{} ({})", unique ? "unique " : "", rel.Quoted(),
                     type.empty() ? "" : " using " + type, Join(cols, ", "));
}

std::vector<std::string> ReplaceRelationSql(const RelationRef& rel, const std::string& sql,
                                            RelationKind build, RelationKind existing,
                                            const nlohmann::json& indexes) {
  const char* kind = build == RelationKind::kView ? "view" : "table";
  RelationRef tmp{rel.schema, SuffixedName(rel.identifier, "__dbt_tmp")};
  std::vector<std::string> out;
  out.push_back(fmt::format("create schema if not exists {}", QuoteIdentifier(rel.schema)));
  out.push_back(fmt::format("create {} {} as (\n{}\n)", kind, tmp.Quoted(), sql));
  if (build == RelationKind::kTable && indexes.is_array()) {
    for (const auto& index : indexes) out.push_back(IndexSql(tmp, index));
  }
  if (existing != RelationKind::kNone) {
    out.push_back(fmt::format("alter {} {} rename to {}",
                              existing == RelationKind::kView ? "view" : "table", rel.Quoted(),
                              QuoteIdentifier(SuffixedName(rel.identifier, "__dbt_backup"))));
  }
  out.push_back(
      fmt::format("alter {} {} rename to {}", kind, tmp.Quoted(), QuoteIdentifier(rel.identifier)));
  if (existing != RelationKind::kNone) {
    out.push_back(fmt::format("drop {} if exists {} cascade",
                              existing == RelationKind::kView ? "view" : "table",
                              rel.QuotedWithSuffix("__dbt_backup")));
  }
  return out;
}

std::vector<std::string> IncrementalSql(const RelationRef& rel, const std::string& sql,
                                        const std::string& strategy,
                                        const std::vector<std::string>& unique_key,
                                        const std::vector<std::string>& columns,
                                        std::string* error) {
  std::string cols = Join(Quoted(columns), ", ");
  std::string effective = strategy;
  if (effective.empty()) effective = unique_key.empty() ? "append" : "delete+insert";
  if (effective == "append") {
    return {fmt::format("insert into {} ({})\n(select {} from (\n{}\n) as dbt_new_rows)",
                        rel.Quoted(), cols, cols, sql)};
  }
  if (effective == "delete+insert") {
    if (unique_key.empty()) {
      *error = "incremental_strategy 'delete+insert' needs a unique_key";
      return {};
    }
    // The insert waits for the delete (its one-time filter counts the deleted rows), so a
    // unique index on the key sees the old row gone; both read the model's rows, computed
    // once, from the snapshot the statement started with, as from dbt's temporary table.
    std::string keys = Join(Quoted(unique_key), ", ");
    return {fmt::format(
        "with dbt_new_rows as materialized (\n{3}\n),\n"
        "dbt_deleted as (\n  delete from {0} where ({2}) in (select {2} from dbt_new_rows)\n"
        "  returning 1\n)\n"
        "insert into {0} ({1})\n(select {1} from dbt_new_rows\n"
        " where (select count(*) from dbt_deleted) >= 0)",
        rel.Quoted(), cols, keys, sql)};
  }
  if (effective == "merge") {
    if (unique_key.empty()) {
      *error = "incremental_strategy 'merge' needs a unique_key";
      return {};
    }
    std::vector<std::string> on, set;
    for (const auto& k : unique_key) {
      on.push_back(
          fmt::format("DBT_INTERNAL_SOURCE.{0} = DBT_INTERNAL_DEST.{0}", QuoteIdentifier(k)));
    }
    for (const auto& c : columns)
      set.push_back(fmt::format("{0} = DBT_INTERNAL_SOURCE.{0}", QuoteIdentifier(c)));
    return {fmt::format(
        "merge into {} as DBT_INTERNAL_DEST\nusing (\n{}\n) as DBT_INTERNAL_SOURCE\non ({})\n"
        "when matched then update set\n  {}\nwhen not matched then insert\n  ({})\n"
        "values\n  ({})",
        rel.Quoted(), sql, Join(on, " and "), Join(set, ", "), cols,
        Join(Quoted(columns), ", ", "DBT_INTERNAL_SOURCE."))};
  }
  *error =
      fmt::format("unknown incremental_strategy '{}' (append, delete+insert, merge)", strategy);
  return {};
}

std::string TestQuerySql(const std::string& compiled, const std::string& fail_calc,
                         const std::string& warn_if, const std::string& error_if) {
  // dbt writes the default thresholds as "!= 0"; PostgreSQL reads "<>" the same.
  auto op = [](std::string s) { return s == "!= 0" ? std::string("<> 0") : s; };
  return fmt::format(
      "select {0} as failures, {0} {1} as should_warn, {0} {2} as should_error\n"
      "from (\n{3}\n) dbt_internal_test",
      fail_calc, op(warn_if), op(error_if), compiled);
}

std::string InjectCtes(const std::string& sql,
                       const std::vector<std::pair<std::string, std::string>>& ctes) {
  if (ctes.empty()) return sql;
  std::string defs;
  for (size_t i = 0; i < ctes.size(); ++i) {
    defs += fmt::format("{}{} as (\n{}\n)", i ? ", " : "", ctes[i].first, ctes[i].second);
  }
  // Find the first token, past whitespace and comments.
  size_t i = 0;
  while (i < sql.size()) {
    if (std::isspace(static_cast<unsigned char>(sql[i]))) {
      ++i;
    } else if (sql.compare(i, 2, "--") == 0) {
      i = sql.find('\n', i);
      if (i == std::string::npos) i = sql.size();
    } else if (sql.compare(i, 2, "/*") == 0) {
      i = sql.find("*/", i);
      i = i == std::string::npos ? sql.size() : i + 2;
    } else {
      break;
    }
  }
  auto lower = [&](size_t at, size_t n) {
    std::string s = sql.substr(at, n);
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  if (lower(i, 4) == "with" && i + 4 < sql.size() &&
      std::isspace(static_cast<unsigned char>(sql[i + 4]))) {
    std::string rest = sql.substr(i + 4);
    size_t j = 0;
    while (j < rest.size() && std::isspace(static_cast<unsigned char>(rest[j]))) ++j;
    bool recursive = rest.compare(j, 9, "recursive") == 0;
    if (recursive) {
      return sql.substr(0, i + 4) + " recursive " + defs + ", " + rest.substr(j + 9);
    }
    return sql.substr(0, i + 4) + " " + defs + ", " + rest.substr(j);
  }
  return "with " + defs + "\n" + sql;
}

std::vector<std::string> UniqueKeyColumns(const nlohmann::json& unique_key) {
  std::vector<std::string> out;
  if (unique_key.is_string()) {
    out.push_back(unique_key.get<std::string>());
  } else if (unique_key.is_array()) {
    for (const auto& k : unique_key) out.push_back(k.get<std::string>());
  }
  return out;
}

}  // namespace pdv::transform
