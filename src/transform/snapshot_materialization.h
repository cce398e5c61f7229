#pragma once

// A snapshot in one transaction: the first run creates the table; later ones stage the
// query, add the columns the snapshot lacks, and merge (snapshot.h). The run's time is
// read once, so every row it writes carries the same one.

#include "transform/materializations.h"

namespace pdv::transform {

class SnapshotMaterialization final : public Materialization {
 public:
  NodeResult Execute(NodeRun& run) override;
};

}  // namespace pdv::transform
