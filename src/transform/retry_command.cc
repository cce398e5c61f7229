// pdv transform retry (retry_command.h).

#include "transform/retry_command.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace pdv::transform {

Result<TransformOptions> RetryOptions(const Project& project, const TransformOptions& options) {
  namespace fs = std::filesystem;
  fs::path file = fs::path(project.target_path) / "run_results.json";
  std::ifstream in(file);
  if (!in) {
    return Status::Error(
        fmt::format("no previous run to retry: {} does not exist (run seed, run, test, build or "
                    "snapshot first)",
                    file.string()));
  }
  nlohmann::json results;
  try {
    results = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    return Status::Error(fmt::format("{}: not valid JSON: {}", file.string(), e.what()));
  }
  const nlohmann::json* args = results.contains("args") ? &results["args"] : nullptr;
  std::string which = args && (*args).value("which", nlohmann::json()).is_string()
                          ? (*args)["which"].get<std::string>()
                          : "";
  static const std::set<std::string> kRetryable = {"seed", "run", "test", "build", "snapshot"};
  if (!kRetryable.count(which)) {
    return Status::Error(
        fmt::format("{} records command '{}', which retry cannot repeat (seed, run, test, build, "
                    "snapshot)",
                    file.string(), which));
  }
  TransformOptions retry = options;
  retry.command = which;
  if (args && (*args).value("full_refresh", nlohmann::json()).is_boolean()) {
    retry.full_refresh = retry.full_refresh || (*args)["full_refresh"].get<bool>();
  }
  // dbt retry repeats the previous invocation's --vars and --target unless given again
  // (dbt writes vars as a mapping, pdv as the YAML given; JSON is YAML too).
  if (args && retry.vars.empty() && args->contains("vars")) {
    const nlohmann::json& vars = (*args)["vars"];
    if (vars.is_string()) retry.vars = vars.get<std::string>();
    if (vars.is_object() && !vars.empty()) retry.vars = vars.dump();
  }
  if (args && retry.target.empty() && (*args).value("target", nlohmann::json()).is_string()) {
    retry.target = (*args)["target"].get<std::string>();
  }
  retry.only_nodes.emplace();
  if (results.contains("results") && results["results"].is_array()) {
    for (const auto& r : results["results"]) {
      if (!r.is_object() || !r.value("unique_id", nlohmann::json()).is_string()) continue;
      std::string status =
          r.value("status", nlohmann::json()).is_string() ? r["status"].get<std::string>() : "";
      std::string id = r["unique_id"].get<std::string>();
      if ((status == "error" || status == "fail" || status == "skipped") &&
          project.nodes.count(id)) {
        retry.only_nodes->insert(id);
      }
    }
  }
  return retry;
}

}  // namespace pdv::transform
