#pragma once

// `pdv transform retry`: the previous invocation's command again, over only the nodes that
// errored, failed or were skipped in its target/run_results.json, as dbt retry does.

#include "common/status.h"
#include "transform/project.h"
#include "transform/transform.h"

namespace pdv::transform {

// The options that re-run the previous invocation recorded in <target-path>/run_results.json
// of `project`: its command (args.which), --full-refresh, and --vars and --target when
// `options` has none of its own, restricted to the nodes whose
// status there was error, fail or skipped and that the project still has. No such node
// leaves only_nodes empty (nothing to do). A missing or unreadable run_results.json, or
// one written by a command retry cannot repeat, is the returned error.
Result<TransformOptions> RetryOptions(const Project& project, const TransformOptions& options);

}  // namespace pdv::transform
