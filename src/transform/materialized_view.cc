#include "transform/materialized_view.h"

#include <fmt/format.h>

#include <iostream>

namespace pdv::transform {

namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

IndexShape ConfigShape(const nlohmann::json& index) {
  IndexShape shape;
  if (index.contains("columns") && index["columns"].is_array()) {
    for (const auto& c : index["columns"]) {
      shape.columns += (shape.columns.empty() ? "" : ",") + Lower(c.get<std::string>());
    }
  }
  shape.unique = index.value("unique", false);
  shape.type = Lower(index.value("type", "btree"));
  return shape;
}

// A string literal (standard_conforming_strings, PostgreSQL's default).
std::string Literal(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

}  // namespace

std::vector<std::string> IndexChangeSql(const RelationRef& rel,
                                        const std::vector<IndexShape>& existing,
                                        const nlohmann::json& wanted) {
  std::vector<IndexShape> want;
  if (wanted.is_array()) {
    for (const auto& index : wanted) want.push_back(ConfigShape(index));
  }
  std::vector<std::string> out;
  for (const auto& have : existing) {
    bool keep = false;
    for (const auto& w : want) keep = keep || w.SameAs(have);
    if (!keep) {
      out.push_back(
          fmt::format("drop index if exists {}", RelationRef{rel.schema, have.name}.Quoted()));
    }
  }
  for (size_t i = 0; i < want.size(); ++i) {
    bool present = false;
    for (const auto& have : existing) present = present || want[i].SameAs(have);
    if (!present) out.push_back(IndexSql(rel, wanted[i]));
  }
  return out;
}

Result<ModelMaterialization::Body> MaterializedViewMaterialization::Plan(NodeRun& run) {
  const Node& node = run.node;
  RelationRef rel{node.schema, node.alias};
  const nlohmann::json indexes =
      node.config.contains("indexes") ? node.config["indexes"] : nlohmann::json::array();
  auto kind = run.adapter.QueryText(fmt::format(
      "select c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace where "
      "n.nspname = {} and c.relname = {}",
      Literal(rel.schema), Literal(rel.identifier)));
  if (!kind.ok()) return kind.status();
  std::string relkind = kind->empty() ? "" : (*kind)[0][0].value_or("");

  Body body{.main = 1, .reported = 1, .built = RelationKind::kTable};
  auto create = [&](const RelationRef& into) {
    body.statements.push_back(
        fmt::format("create materialized view {} as (\n{}\n)", into.Quoted(), run.compiled));
    if (indexes.is_array()) {
      for (const auto& index : indexes) body.statements.push_back(IndexSql(into, index));
    }
  };
  body.statements.push_back(
      fmt::format("create schema if not exists {}", run.adapter.Quote(rel.schema)));
  if (relkind.empty()) {
    create(rel);
    return body;
  }
  if (run.full_refresh || relkind != "m") {
    // Built beside the old relation and swapped in: readers never see none.
    RelationRef tmp{rel.schema, SuffixedName(rel.identifier, "__dbt_tmp")};
    std::string backup = SuffixedName(rel.identifier, "__dbt_backup");
    const char* old_kind = relkind == "v" ? "view" : relkind == "m" ? "materialized view" : "table";
    create(tmp);
    body.statements.push_back(
        fmt::format("alter {} {} rename to {}", old_kind, rel.Quoted(), run.adapter.Quote(backup)));
    body.statements.push_back(fmt::format("alter materialized view {} rename to {}", tmp.Quoted(),
                                          run.adapter.Quote(rel.identifier)));
    body.statements.push_back(fmt::format("drop {} if exists {} cascade", old_kind,
                                          RelationRef{rel.schema, backup}.Quoted()));
    return body;
  }

  // A materialized view already: refreshed, or its configuration changed. Nothing is
  // dropped, so the views on it stay (what an incremental run means to DroppedViews).
  run.incremental = true;
  auto rows = run.adapter.QueryText(fmt::format(
      "select i.relname, ix.indisunique, am.amname, array_to_string(array(select a.attname "
      "from unnest(ix.indkey) with ordinality k(attnum, ord) join pg_attribute a on "
      "a.attrelid = ix.indrelid and a.attnum = k.attnum order by k.ord), ',') from pg_index ix "
      "join pg_class i on i.oid = ix.indexrelid join pg_am am on am.oid = i.relam where "
      "ix.indrelid = to_regclass({}) order by i.relname",
      Literal(rel.Quoted())));
  if (!rows.ok()) return rows.status();
  std::vector<IndexShape> existing;
  for (const auto& r : *rows) {
    existing.push_back(IndexShape{.name = r[0].value_or(""),
                                  .columns = Lower(r[3].value_or("")),
                                  .unique = r[1].value_or("f") == "t",
                                  .type = r[2].value_or("btree")});
  }
  std::vector<std::string> changes = IndexChangeSql(rel, existing, indexes);
  body.statements.clear();
  body.main = body.reported = 0;
  if (changes.empty()) {
    body.statements.push_back(fmt::format("refresh materialized view {}", rel.Quoted()));
    return body;
  }
  std::string on_change = node.config.value("on_configuration_change", "apply");
  if (on_change == "apply") {
    body.statements = std::move(changes);
  } else if (on_change == "continue") {
    std::cerr << fmt::format(
        "warning: {}: configuration changes were identified and `on_configuration_change` "
        "was set to `continue` for {}\n",
        node.original_file_path, rel.Quoted());
  } else if (on_change == "fail") {
    return Status::Error(fmt::format(
        "{}: configuration changes were identified and `on_configuration_change` was set to "
        "`fail` for {}",
        node.original_file_path, rel.Quoted()));
  } else {
    return Status::Error(
        fmt::format("{}: on_configuration_change '{}' is none of apply, continue, fail",
                    node.original_file_path, on_change));
  }
  return body;
}

}  // namespace pdv::transform
