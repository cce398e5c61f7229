#pragma once

// The model materializations: view, table and incremental. Each runs the model's
// pre-hooks, its own statements and its post-hooks in one transaction (ModelMaterialization).

#include <string>
#include <vector>

#include "transform/materializations.h"

namespace pdv::transform {

class ModelMaterialization : public Materialization {
 public:
  NodeResult Execute(NodeRun& run) final;

 protected:
  struct Body {
    std::vector<std::string> statements;
    size_t main = 0;                            // the statement that holds the model's SQL
    size_t reported = 0;                        // the statement whose status and rows are reported
    RelationKind built = RelationKind::kTable;  // what the relation is after commit
  };
  // The statements that build the relation, or an error result.
  virtual Result<Body> Plan(NodeRun& run) = 0;
};

class ViewMaterialization final : public ModelMaterialization {
 protected:
  Result<Body> Plan(NodeRun& run) override;
};

class TableMaterialization : public ModelMaterialization {
 protected:
  Result<Body> Plan(NodeRun& run) override;
};

// A table the first time (or with --full-refresh), then the new rows merged by strategy.
class IncrementalMaterialization final : public TableMaterialization {
 protected:
  Result<Body> Plan(NodeRun& run) override;
};

}  // namespace pdv::transform
