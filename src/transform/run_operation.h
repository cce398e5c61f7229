#pragma once

// `pdv transform run-operation MACRO --args '{...}'`: calls one macro of the project or a
// package with dbt's execute context, its statements run against the warehouse.

#include "common/status.h"
#include "transform/adapter.h"
#include "transform/graph.h"
#include "transform/project.h"
#include "transform/transform.h"

namespace pdv::transform {

// Calls options.macro ("name", searched as dbt does for an unqualified name, or
// "package.name") with options.macro_args (a YAML mapping: its keys are the macro's named
// arguments) in one transaction on `adapter` (borrowed, used by this call only), committed
// when the macro returns, rolled back when it raises, as dbt's run-operation. An unknown
// macro or package, bad --args, a template error or a failed statement is the returned
// error.
Status RunOperation(const Project& project, const Graph& graph, Adapter& adapter,
                    const TransformOptions& options);

}  // namespace pdv::transform
