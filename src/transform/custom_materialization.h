#pragma once

// Materializations a project or package defines as {% materialization name, adapter=... %}
// (or `default`) blocks, picked by a model's `materialized` config. The block is a macro
// (materialization_<name>_<adapter>) that the runner calls with dbt's context for the
// node plus what materializations read: sql / compiled_code, pre_hooks, post_hooks.

#include <optional>
#include <string>

#include "transform/materializations.h"

namespace pdv::transform {

struct MaterializationMacro {
  std::string package;  // the package that defines it
  std::string macro;    // materialization_<name>_<adapter>
};

// The macro for materialization `name` on adapter `adapter_type`, as dbt picks it: one
// for the adapter before a `default` one; among equals, the root project's, then an
// installed package's (not for a built-in name: view, table, incremental ...). Null: the
// project and its packages define none.
std::optional<MaterializationMacro> FindMaterializationMacro(const Project& project,
                                                             const std::string& name,
                                                             const std::string& adapter_type);

// Runs the macro in one transaction (committed when it returns, rolled back when it
// raises); its statement('main') is the node's reported statement, and the relations it
// returns ({'relations': [...]}) are what the relation cache records.
class CustomMaterialization final : public Materialization {
 public:
  explicit CustomMaterialization(MaterializationMacro macro) : macro_(std::move(macro)) {}
  NodeResult Execute(NodeRun& run) override;

 private:
  MaterializationMacro macro_;
};

}  // namespace pdv::transform
