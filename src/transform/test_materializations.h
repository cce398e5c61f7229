#pragma once

// The checks: a data test (its query's failing rows counted, judged by fail_calc,
// warn_if, error_if and severity) and a unit test (the model run on given rows, compared
// with the expected ones, in a transaction that is rolled back).

#include "transform/materializations.h"

namespace pdv::transform {

class DataTestMaterialization final : public Materialization {
 public:
  NodeResult Execute(NodeRun& run) override;
};

class UnitTestMaterialization final : public Materialization {
 public:
  NodeResult Execute(NodeRun& run) override;
};

}  // namespace pdv::transform
