#pragma once

// materialized='materialized_view', as dbt-postgres does it: CREATE MATERIALIZED VIEW the
// first time; a rebuild (tmp, rename, drop the backup) when --full-refresh or when the
// relation is not a materialized view; else REFRESH MATERIALIZED VIEW, or, when the
// `indexes` config changed, what `on_configuration_change` says (apply: the indexes
// dropped and made, continue: a warning and nothing, fail: an error).

#include <string>
#include <vector>

#include "transform/model_materializations.h"

namespace pdv::transform {

// An index as the catalog describes it and as the `indexes` config entry does.
struct IndexShape {
  std::string name;     // the catalog's; "" for a config entry
  std::string columns;  // comma-separated, in order
  bool unique = false;
  std::string type = "btree";
  bool SameAs(const IndexShape& other) const {
    return columns == other.columns && unique == other.unique && type == other.type;
  }
};

// The statements that bring `existing` indexes of `rel` to `wanted`: drops of the ones not
// wanted, creates of the missing ones. Empty: no change. Pure.
std::vector<std::string> IndexChangeSql(const RelationRef& rel,
                                        const std::vector<IndexShape>& existing,
                                        const nlohmann::json& wanted);

class MaterializedViewMaterialization final : public ModelMaterialization {
 protected:
  Result<Body> Plan(NodeRun& run) override;
};

}  // namespace pdv::transform
