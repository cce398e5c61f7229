#pragma once

// A seed: the CSV parsed (seed_file.h), loaded into a new table under a temporary name,
// and swapped into place in one transaction.

#include "transform/materializations.h"

namespace pdv::transform {

class SeedMaterialization final : public Materialization {
 public:
  NodeResult Execute(NodeRun& run) override;
};

}  // namespace pdv::transform
