// docs generate's catalog.json (catalog.h).

#include "transform/catalog.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>

#include "transform/artifacts.h"

namespace pdv::transform {

Status WriteCatalog(const Project& project, pg::Connection& conn, std::FILE* out) {
  // One catalog read for every schema the project's relations live in.
  std::set<std::string> schemas;
  for (const auto& [id, n] : project.nodes) {
    if (n.resource_type != "test" && n.resource_type != "unit_test" &&
        n.materialized() != "ephemeral")
      schemas.insert(n.schema);
  }
  std::string list = "{";
  for (const auto& s : schemas) {
    list += (list.size() > 1 ? "," : "") + std::string("\"");
    for (char c : s) list += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
    list += "\"";
  }
  list += "}";
  auto r = conn.ExecParams(
      "select n.nspname, c.relname, case c.relkind when 'v' then 'VIEW' when 'm' then "
      "'MATERIALIZED VIEW' else 'BASE TABLE' end, pg_get_userbyid(c.relowner), "
      "obj_description(c.oid, 'pg_class'), a.attnum, a.attname, "
      "format_type(a.atttypid, a.atttypmod), col_description(c.oid, a.attnum) "
      "from pg_class c join pg_namespace n on n.oid = c.relnamespace "
      "join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped "
      "where n.nspname = any($1::text[]) and c.relkind in ('r', 'p', 'v', 'm', 'f') "
      "order by n.nspname, c.relname, a.attnum",
      {list});
  if (!r.ok()) return Status::Error("docs generate: reading the catalog: " + r.message());
  std::map<std::pair<std::string, std::string>, nlohmann::json> tables;
  for (int i = 0; i < r->rows(); ++i) {
    auto& t = tables[{r->str(i, 0), r->str(i, 1)}];
    if (t.is_null()) {
      t = {{"metadata",
            {{"type", r->str(i, 2)},
             {"schema", r->str(i, 0)},
             {"name", r->str(i, 1)},
             {"database", project.target.database},
             {"comment", r->is_null(i, 4) ? nlohmann::json() : nlohmann::json(r->str(i, 4))},
             {"owner", r->str(i, 3)}}},
           {"columns", nlohmann::json::object()},
           {"stats",
            {{"has_stats",
              {{"id", "has_stats"},
               {"label", "Has Stats?"},
               {"value", false},
               {"include", false},
               {"description", "Indicates whether there are statistics for this table"}}}}}};
    }
    t["columns"][r->str(i, 6)] = {
        {"type", r->str(i, 7)},
        {"index", std::stoi(r->str(i, 5))},
        {"name", r->str(i, 6)},
        {"comment", r->is_null(i, 8) ? nlohmann::json() : nlohmann::json(r->str(i, 8))}};
  }
  nlohmann::json nodes = nlohmann::json::object(), sources = nlohmann::json::object();
  for (const auto& [id, n] : project.nodes) {
    std::string name = n.resource_type == "source" ? n.identifier : n.alias;
    auto it = tables.find({n.schema, name});
    if (it == tables.end() || n.resource_type == "test" || n.resource_type == "unit_test") continue;
    nlohmann::json entry = it->second;
    entry["unique_id"] = id;
    (n.resource_type == "source" ? sources : nodes)[id] = std::move(entry);
  }
  nlohmann::json doc = {{"metadata",
                         {{"dbt_schema_version", "https://schemas.getdbt.com/dbt/catalog/v1.json"},
                          {"dbt_version", "1.8.0"},
                          {"generated_at", ArtifactTime()},
                          {"invocation_id", project.invocation_id},
                          {"env", nlohmann::json::object()}}},
                        {"nodes", nodes},
                        {"sources", sources},
                        {"errors", nullptr}};
  if (Status s = WriteArtifact(project, "catalog.json", doc); !s.ok()) return s;
  fmt::print(out, "Catalog written to {}/catalog.json ({} nodes, {} sources)\n",
             project.target_path, nodes.size(), sources.size());
  return Status::Ok();
}

}  // namespace pdv::transform
