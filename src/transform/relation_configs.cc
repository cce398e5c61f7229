#include "transform/relation_configs.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <set>

namespace pdv::transform {
namespace {

std::string Lower(std::string s) {
  std::ranges::transform(s, s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// dbt-postgres' comment literal: dollar quoting, so a description needs no escaping.
std::string CommentLiteral(const std::string& text) {
  std::string tag = "$dbt_comment_literal_block$";
  for (int n = 1; text.find(tag) != std::string::npos; ++n) {
    tag = fmt::format("$dbt_comment_literal_block{}$", n);
  }
  return tag + text + tag;
}

Status ApplyGrants(NodeRun& run) {
  const Node& node = run.node;
  if (!node.config.contains("grants") || node.config["grants"].is_null()) return Status::Ok();
  auto wanted = GrantsConfig(node.config["grants"], node.original_file_path);
  if (!wanted.ok()) return wanted.status();
  RelationRef rel{node.schema, node.alias};
  // What the relation has now, granted by this role to others (dbt-postgres'
  // get_show_grant_sql): a rebuilt relation has none, a reloaded or incremental one keeps its.
  auto rows = run.adapter.QueryText(fmt::format(
      "select grantee, lower(privilege_type) from information_schema.role_table_grants where "
      "grantor = current_role and grantee <> current_role and table_schema = '{}' and "
      "table_name = '{}'",
      node.schema, node.alias));
  if (!rows.ok()) return rows.status();
  std::map<std::string, std::vector<std::string>> current;
  for (const auto& row : *rows) {
    if (row.size() == 2 && row[0] && row[1]) current[*row[1]].push_back(*row[0]);
  }
  for (const std::string& sql : GrantChangeSql(rel, current, *wanted)) {
    StatementResult r = run.adapter.Execute(sql);
    if (!r.ok) {
      return Status::Error(
          fmt::format("{}: grants: {} (in: {})", node.original_file_path, r.error, sql));
    }
  }
  return Status::Ok();
}

Status PersistDocs(NodeRun& run, RelationKind built) {
  const Node& node = run.node;
  auto it = node.config.find("persist_docs");
  if (it == node.config.end() || !it->is_object()) return Status::Ok();
  bool relation = ConfigFlag(*it, "relation", false);
  bool columns = ConfigFlag(*it, "columns", false);
  RelationRef rel{node.schema, node.alias};
  std::vector<std::string> statements;
  if (relation && !node.description.empty()) {
    statements.push_back(fmt::format("comment on {} {} is {}",
                                     built == RelationKind::kView ? "view" : "table", rel.Quoted(),
                                     CommentLiteral(node.description)));
  }
  if (columns && node.columns.is_object() && !node.columns.empty()) {
    // Only the columns the relation has, as dbt-postgres' alter_column_comment.
    auto existing = run.adapter.ColumnsOf(node.schema, node.alias);
    if (!existing.ok()) return existing.status();
    std::set<std::string> names;
    for (const auto& c : *existing) names.insert(c.name);
    for (const auto& [name, col] : node.columns.items()) {
      if (!names.count(name)) continue;
      bool quote =
          col.is_object() && ConfigBool(col.value("quote", nlohmann::json())).value_or(false);
      statements.push_back(fmt::format(
          "comment on column {}.{} is {}", rel.Quoted(), quote ? run.adapter.Quote(name) : name,
          CommentLiteral(col.is_object() ? col.value("description", "") : "")));
    }
  }
  for (const std::string& sql : statements) {
    StatementResult r = run.adapter.Execute(sql);
    if (!r.ok) {
      return Status::Error(fmt::format("{}: persist_docs: {}", node.original_file_path, r.error));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::map<std::string, std::vector<std::string>>> GrantsConfig(const nlohmann::json& grants,
                                                                     const std::string& where) {
  std::map<std::string, std::vector<std::string>> out;
  auto bad = [&] {
    return Status::Error(fmt::format(
        "{}: config 'grants' must map privileges to a grantee or a list of grantees, not {}", where,
        grants.dump()));
  };
  if (!grants.is_object()) return bad();
  for (const auto& [raw, value] : grants.items()) {
    std::string privilege = Lower(raw);
    if (!privilege.empty() && privilege[0] == '+') privilege.erase(0, 1);
    std::vector<std::string>& grantees = out[privilege];
    if (value.is_string()) {
      grantees.push_back(value.get<std::string>());
    } else if (value.is_array()) {
      for (const auto& g : value) {
        if (!g.is_string()) return bad();
        grantees.push_back(g.get<std::string>());
      }
    } else if (!value.is_null()) {
      return bad();
    }
  }
  return out;
}

std::vector<std::string> GrantChangeSql(
    const RelationRef& relation, const std::map<std::string, std::vector<std::string>>& current,
    const std::map<std::string, std::vector<std::string>>& wanted) {
  auto lacking = [](const std::map<std::string, std::vector<std::string>>& from,
                    const std::map<std::string, std::vector<std::string>>& in) {
    std::map<std::string, std::vector<std::string>> out;
    for (const auto& [privilege, grantees] : from) {
      auto other = in.find(privilege);
      for (const auto& g : grantees) {
        bool there = other != in.end() &&
                     std::any_of(other->second.begin(), other->second.end(),
                                 [&](const std::string& o) { return Lower(o) == Lower(g); });
        if (!there) out[privilege].push_back(g);
      }
    }
    return out;
  };
  std::vector<std::string> sql;
  for (const auto& [privilege, grantees] : lacking(current, wanted)) {
    sql.push_back(fmt::format("revoke {} on {} from {}", privilege, relation.Quoted(),
                              fmt::join(grantees, ", ")));
  }
  for (const auto& [privilege, grantees] : lacking(wanted, current)) {
    sql.push_back(fmt::format("grant {} on {} to {}", privilege, relation.Quoted(),
                              fmt::join(grantees, ", ")));
  }
  return sql;
}

Status ApplyRelationConfigs(NodeRun& run, RelationKind built) {
  if (Status s = ApplyGrants(run); !s.ok()) return s;
  return PersistDocs(run, built);
}

}  // namespace pdv::transform
