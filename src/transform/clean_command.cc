// pdv transform clean (clean_command.h).

#include "transform/clean_command.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace pdv::transform {
namespace {

namespace fs = std::filesystem;

// `key` of dbt_project.yml as a list of paths (a single string is one path), else
// `fallback`.
Result<std::vector<std::string>> PathsOf(const YAML::Node& yml, const char* key,
                                         std::vector<std::string> fallback) {
  YAML::Node v = yml[key];
  if (!v) return fallback;
  try {
    if (v.IsScalar()) return std::vector<std::string>{v.as<std::string>()};
    if (!v.IsSequence()) throw YAML::Exception(v.Mark(), "expected a list of paths");
    std::vector<std::string> out;
    for (const auto& e : v) out.push_back(e.as<std::string>());
    return out;
  } catch (const YAML::Exception& e) {
    return Status::Error(fmt::format("dbt_project.yml:{}: {}: {}", v.Mark().line + 1, key, e.msg));
  }
}

// `relative` under `dir`, normal and without a trailing separator ("." is `dir`).
fs::path Under(const fs::path& dir, const std::string& relative) {
  fs::path abs = (dir / relative).lexically_normal();
  if (!abs.has_filename() && abs.has_parent_path()) abs = abs.parent_path();
  return abs;
}

// Whether `path` (absolute, normal) is `dir` or inside it.
bool Inside(const fs::path& path, const fs::path& dir) {
  auto d = std::mismatch(dir.begin(), dir.end(), path.begin(), path.end()).first;
  return d == dir.end();
}

}  // namespace

Status Clean(const TransformOptions& options) {
  fs::path dir = Under(fs::absolute(options.project_dir.empty() ? "." : options.project_dir), ".");
  fs::path file = dir / "dbt_project.yml";
  if (!fs::exists(file))
    return Status::Error(
        fmt::format("{}: no dbt_project.yml (not a dbt project folder)", dir.string()));
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  YAML::Node yml;
  try {
    yml = YAML::Load(text.str());
  } catch (const YAML::Exception& e) {
    return Status::Error(
        fmt::format("dbt_project.yml:{}: invalid YAML: {}", e.mark.line + 1, e.msg));
  }
  if (!yml.IsMap()) return Status::Error("dbt_project.yml:1: expected a mapping");
  auto target_path = PathsOf(yml, "target-path", {"target"});
  if (!target_path.ok()) return target_path.status();
  auto targets = PathsOf(yml, "clean-targets", *target_path);
  if (!targets.ok()) return targets.status();
  std::set<fs::path> protected_paths{dir};
  for (auto [key, fallback] : {std::pair{"model-paths", "models"},
                               {"seed-paths", "seeds"},
                               {"test-paths", "tests"},
                               {"macro-paths", "macros"},
                               {"snapshot-paths", "snapshots"},
                               {"analysis-paths", "analyses"},
                               {"docs-paths", "models"}}) {
    auto paths = PathsOf(yml, key, {fallback});
    if (!paths.ok()) return paths.status();
    for (const auto& p : *paths) protected_paths.insert(Under(dir, p));
  }
  std::vector<std::string> outside;
  for (const auto& t : *targets) {
    fs::path abs = Under(dir, t);
    if (!Inside(abs, dir)) outside.push_back(t);
  }
  if (!outside.empty()) {
    std::string list;
    for (const auto& o : outside) list += (list.empty() ? "" : ", ") + o;
    return Status::Error(fmt::format(
        "dbt_project.yml:{}: clean-targets outside the project folder {} are not cleaned: {} "
        "(nothing was removed)",
        yml["clean-targets"] ? yml["clean-targets"].Mark().line + 1 : 1, dir.string(), list));
  }
  for (const auto& t : *targets) {
    fs::path abs = Under(dir, t);
    std::string shown = fs::path(t).lexically_normal().string();
    if (protected_paths.count(abs)) {
      fmt::print(options.out, "ERROR: not cleaning {} because it is protected\n", shown);
      continue;
    }
    fmt::print(options.out, "Checking {}/*\n", shown);
    std::error_code ec;
    fs::remove_all(abs, ec);
    if (ec) return Status::Error(fmt::format("cannot remove {}: {}", abs.string(), ec.message()));
    fmt::print(options.out, "  Cleaned {}/*\n", shown);
  }
  fmt::print(options.out, "Finished cleaning all paths.\n");
  return Status::Ok();
}

}  // namespace pdv::transform
