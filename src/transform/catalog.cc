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

Status WriteCatalog(const Project& project, Adapter& adapter, std::FILE* out) {
  // One catalog read for every schema the project's relations live in.
  std::set<std::string> schemas;
  for (const auto& [id, n] : project.nodes) {
    if (n.resource_type != NodeType::kTest && n.resource_type != NodeType::kUnitTest &&
        n.materialized() != "ephemeral")
      schemas.insert(n.schema);
  }
  auto relations = adapter.Catalog({schemas.begin(), schemas.end()});
  if (!relations.ok())
    return Status::Error("docs generate: reading the catalog: " + relations.message());
  auto text = [](const std::optional<std::string>& v) {
    return v ? nlohmann::json(*v) : nlohmann::json();
  };
  std::map<std::pair<std::string, std::string>, nlohmann::json> tables;
  for (const CatalogRelation& rel : *relations) {
    nlohmann::json t = {
        {"metadata",
         {{"type", rel.type},
          {"schema", rel.schema},
          {"name", rel.name},
          {"database", project.target.database},
          {"comment", text(rel.comment)},
          {"owner", rel.owner}}},
        {"columns", nlohmann::json::object()},
        {"stats",
         {{"has_stats",
           {{"id", "has_stats"},
            {"label", "Has Stats?"},
            {"value", false},
            {"include", false},
            {"description", "Indicates whether there are statistics for this table"}}}}}};
    for (const CatalogColumn& c : rel.columns) {
      t["columns"][c.name] = {
          {"type", c.type}, {"index", c.index}, {"name", c.name}, {"comment", text(c.comment)}};
    }
    tables[{rel.schema, rel.name}] = std::move(t);
  }
  nlohmann::json nodes = nlohmann::json::object(), sources = nlohmann::json::object();
  for (const auto& [id, n] : project.nodes) {
    std::string name = n.resource_type == NodeType::kSource ? n.identifier : n.alias;
    auto it = tables.find({n.schema, name});
    if (it == tables.end() || n.resource_type == NodeType::kTest ||
        n.resource_type == NodeType::kUnitTest)
      continue;
    nlohmann::json entry = it->second;
    entry["unique_id"] = id;
    (n.resource_type == NodeType::kSource ? sources : nodes)[id] = std::move(entry);
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
