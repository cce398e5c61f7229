#pragma once

// The run's artifacts, in dbt's schemas where they overlap: target/manifest.json (every
// node, with the SQL compiled this run) and target/run_results.json (each node's outcome).

#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "transform/graph.h"
#include "transform/node_result.h"
#include "transform/project.h"
#include "transform/transform.h"

namespace pdv::transform {

// Writes `doc` to <target-path>/<file> (the folder made first).
Status WriteArtifact(const Project& project, const std::string& file, const nlohmann::json& doc);

// Now, as the artifacts write times ("2026-12-01T23:20:59.123456Z").
std::string ArtifactTime();

// `adapter_type`: the adapter's Type() ("postgres"), dbt's metadata.adapter_type.
Status WriteManifest(const Project& project, const Graph& graph,
                     const std::map<std::string, std::string>& compiled,
                     const std::string& generated_at, const std::string& adapter_type);

Status WriteRunResults(const Project& project, const TransformOptions& options,
                       const std::vector<NodeResult>& results, double elapsed,
                       const std::string& command);

}  // namespace pdv::transform
