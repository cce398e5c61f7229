#include "transform/materializations.h"

#include <fmt/format.h>

#include "transform/custom_materialization.h"
#include "transform/materialized_view.h"
#include "transform/microbatch.h"
#include "transform/model_materializations.h"
#include "transform/seed_materialization.h"
#include "transform/snapshot_materialization.h"
#include "transform/test_materializations.h"

namespace pdv::transform {

std::unique_ptr<Materialization> MaterializationFor(const Node& node, std::string* error) {
  switch (node.resource_type) {
    case NodeType::kSeed:
      return std::make_unique<SeedMaterialization>();
    case NodeType::kSnapshot:
      return std::make_unique<SnapshotMaterialization>();
    case NodeType::kTest:
      return std::make_unique<DataTestMaterialization>();
    case NodeType::kUnitTest:
      return std::make_unique<UnitTestMaterialization>();
    case NodeType::kModel:
    case NodeType::kSource:
      break;
  }
  std::string mat = node.materialized();
  if (mat == "view") return std::make_unique<ViewMaterialization>();
  if (mat == "table") return std::make_unique<TableMaterialization>();
  if (mat == "incremental" && node.config.value("incremental_strategy", "") == "microbatch")
    return std::make_unique<MicrobatchMaterialization>();
  if (mat == "incremental") return std::make_unique<IncrementalMaterialization>();
  if (mat == "materialized_view") return std::make_unique<MaterializedViewMaterialization>();
  *error = fmt::format(
      "{}: unknown materialization '{}' (view, table, incremental, materialized_view, "
      "ephemeral, or a {{% materialization %}} of the project or a package)",
      node.original_file_path, mat);
  return nullptr;
}

std::unique_ptr<Materialization> MaterializationFor(const Project& project,
                                                    const std::string& adapter_type,
                                                    const Node& node, std::string* error) {
  if (node.resource_type == NodeType::kModel) {
    if (auto macro = FindMaterializationMacro(project, node.materialized(), adapter_type))
      return std::make_unique<CustomMaterialization>(std::move(*macro));
  }
  return MaterializationFor(node, error);
}

Result<DroppedViews> DroppedViews::Before(NodeRun& run) {
  DroppedViews dropped;
  if (run.existing == RelationKind::kNone || run.incremental) return dropped;
  auto views = run.adapter.DependentViews({run.node.schema, run.node.alias});
  if (!views.ok()) return views.status();
  dropped.views_ = std::move(*views);
  return dropped;
}

void DroppedViews::Forget(Adapter& adapter) const {
  for (const auto& v : views_) adapter.CacheRelation(v.schema, v.identifier, RelationKind::kNone);
}

NodeResult ErrorResult(const Node& node, const std::string& where, const std::string& message) {
  return NodeResult{.unique_id = node.unique_id,
                    .status = NodeStatus::kError,
                    .message = where.empty() ? message : fmt::format("{}: {}", where, message)};
}

}  // namespace pdv::transform
