#pragma once

// The project-level hooks: on-run-start before a run's first node, on-run-end after its
// last, rendered with dbt's context (on-run-end also sees `results`, and both `schemas`
// and `database_schemas`: what the run builds), each statement run on its own, outside
// any node's transaction, as dbt runs them.

#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "transform/adapter.h"
#include "transform/node_result.h"
#include "transform/project.h"

namespace pdv::transform {

struct HookRun {
  const Project& project;
  Adapter* adapter;                                  // borrowed, not null
  ContextOptions options;                            // execute mode, as for the run's nodes
  std::vector<std::string> schemas;                  // the schemas the run builds
  const std::vector<NodeResult>* results = nullptr;  // on-run-end: the run's results
  std::function<void(const std::string&)> line;      // progress lines
};

// Runs `hooks` in order; stops at the first failure, which is the returned error (the
// hook's file:line and the warehouse's message).
Status RunProjectHooks(const std::vector<ProjectHook>& hooks, const char* kind, HookRun& run);

}  // namespace pdv::transform
