#pragma once

// A data test's `store_failures` / `store_failures_as` (table, view, ephemeral): its
// failing rows kept in a relation named after the test, in the audit schema
// (<target schema>_dbt_test__audit, or _<schema config>), as dbt's test materialization
// keeps them, replaced on each run.

#include <optional>
#include <string>

#include "transform/materializations.h"

namespace pdv::transform {

struct StoredFailures {
  AdapterTransaction transaction;  // open: the test's count runs in it, then commits
  RelationRef relation;            // what holds the failing rows
};

// Whether `node` stores its failures (store_failures_as wins over store_failures).
bool StoresFailures(const Node& node);

// For a test that stores its failures: the relation (re)made from `compiled` in an open
// transaction. nullopt for one that does not; an error naming the test's definition.
Result<std::optional<StoredFailures>> StoreFailures(NodeRun& run, const std::string& compiled);

}  // namespace pdv::transform
