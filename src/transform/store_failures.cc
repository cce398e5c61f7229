#include "transform/store_failures.h"

#include <fmt/format.h>

namespace pdv::transform {
namespace {

std::string StoreAs(const Node& node) {
  auto it = node.config.find("store_failures_as");
  if (it != node.config.end() && it->is_string()) return it->get<std::string>();
  return ConfigFlag(node.config, "store_failures", false) ? "table" : "";
}

}  // namespace

bool StoresFailures(const Node& node) {
  std::string as = StoreAs(node);
  return as == "table" || as == "view";
}

Result<std::optional<StoredFailures>> StoreFailures(NodeRun& run, const std::string& compiled) {
  const Node& node = run.node;
  const std::string where = node.defined_at.empty() ? node.original_file_path : node.defined_at;
  std::string as = StoreAs(node);
  if (as.empty() || as == "ephemeral") return std::optional<StoredFailures>();
  if (as != "table" && as != "view") {
    return Status::Error(
        fmt::format("{}: store_failures_as '{}' is not one of table, view, ephemeral", where, as));
  }
  // dbt's default generate_schema_name for the audit schema: the target's schema suffixed
  // with the test's schema config (dbt_test__audit by default).
  std::string custom = node.config.contains("schema") && node.config["schema"].is_string()
                           ? node.config["schema"].get<std::string>()
                           : "dbt_test__audit";
  const std::string& target_schema = run.compiler.project().target.schema;
  RelationRef rel{target_schema + "_" + custom, node.alias};
  auto existing = run.adapter.LookUpRelation(rel.schema, rel.identifier);
  if (!existing.ok()) return Status::Error(fmt::format("{}: {}", where, existing.message()));
  auto txn = AdapterTransaction::Begin(run.adapter, run.begin_sql);
  if (!txn.ok()) return Status::Error(fmt::format("{}: {}", where, txn.message()));
  std::vector<std::string> statements = {run.adapter.CreateSchemaSql(rel.schema)};
  if (*existing != RelationKind::kNone) {
    statements.push_back(fmt::format("drop {} if exists {} cascade",
                                     *existing == RelationKind::kView ? "view" : "table",
                                     rel.Quoted()));
  }
  statements.push_back(fmt::format("create {} {} as (\n{}\n)", as, rel.Quoted(), compiled));
  for (const auto& sql : statements) {
    StatementResult r = run.adapter.Execute(sql);
    if (!r.ok) return Status::Error(fmt::format("{}: store_failures: {}", where, r.error));
  }
  run.adapter.CacheRelation(rel.schema, rel.identifier,
                            as == "view" ? RelationKind::kView : RelationKind::kTable);
  return std::optional<StoredFailures>(StoredFailures{std::move(*txn), rel});
}

}  // namespace pdv::transform
