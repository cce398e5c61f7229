// pdv transform parse (parse_command.h).

#include "transform/parse_command.h"

#include <fmt/format.h>

#include <filesystem>

#include "transform/runner.h"

namespace pdv::transform {

Status Parse(const Project& project, const Graph& graph, const TransformOptions& options) {
  TransformOptions parse_options = options;
  parse_options.command = "parse";
  Runner runner(project, graph, nullptr, parse_options);
  runner.reporter().Header(project);
  if (Status s = runner.WriteManifest(); !s.ok()) return s;
  runner.reporter().Line(fmt::format(
      "Wrote {}", (std::filesystem::path(project.target_path) / "manifest.json").string()));
  return Status::Ok();
}

}  // namespace pdv::transform
