#pragma once

// `pdv transform parse`: loads the project (every file, every template parsed) and writes
// target/manifest.json, without a database.

#include "common/status.h"
#include "transform/graph.h"
#include "transform/project.h"
#include "transform/transform.h"

namespace pdv::transform {

// Writes <target-path>/manifest.json of the loaded `project` and prints what was found.
// Loading's own errors (file:line) come before this, from LoadProject and Graph::Build;
// the returned error is a manifest that cannot be written.
Status Parse(const Project& project, const Graph& graph, const TransformOptions& options);

}  // namespace pdv::transform
