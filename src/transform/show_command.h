#pragma once

// `pdv transform show --select X [--limit N]` and `show --inline 'SQL'`: compiles a node
// (or the inline query, which may ref() the project's nodes), runs it with a limit and
// prints its rows as a table, as dbt show does.

#include <set>
#include <string>

#include "common/status.h"
#include "transform/adapter.h"
#include "transform/graph.h"
#include "transform/project.h"
#include "transform/transform.h"

namespace pdv::transform {

// Previews options.inline_sql when set, else each of `selected` that has rows to show
// (models, seeds, snapshots and data tests, in DAG order), at most options.limit rows
// each (all when negative), on options.out. Reads through `adapter` (borrowed, used by
// this call only); writes nothing to the warehouse. A compile or query error is the
// returned error, naming the node's file.
Status Show(const Project& project, const Graph& graph, Adapter& adapter,
            const std::set<std::string>& selected, const TransformOptions& options);

}  // namespace pdv::transform
