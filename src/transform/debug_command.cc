// pdv transform debug (debug_command.h).

#include "transform/debug_command.h"

#include <fmt/format.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/log.h"
#include "pg/connection.h"
#include "transform/project.h"

namespace pdv::transform {
namespace {

namespace fs = std::filesystem;

// Whether `name` is an executable on $PATH (dbt's "Required dependencies" check).
bool OnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (!path) return false;
  std::stringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (!dir.empty() && ::access((fs::path(dir) / name).c_str(), X_OK) == 0) return true;
  }
  return false;
}

// dbt_project.yml alone: found, YAML, a mapping with a name. "" when valid.
std::string ProjectFileProblem(const fs::path& file) {
  if (!fs::exists(file))
    return fmt::format("{}: not found (not a dbt project folder)", file.string());
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  try {
    YAML::Node y = YAML::Load(text.str());
    if (!y.IsMap() || !y["name"]) return fmt::format("{}:1: 'name' is required", file.string());
  } catch (const YAML::Exception& e) {
    return fmt::format("{}:{}: invalid YAML: {}", file.string(), e.mark.line + 1, e.msg);
  }
  return "";
}

}  // namespace

Status Debug(const TransformOptions& options) {
  std::FILE* out = options.out;
  fs::path dir =
      fs::absolute(options.project_dir.empty() ? "." : options.project_dir).lexically_normal();
  fmt::print(out, "Running with pdv transform (dbt-compatible runner)\n");
  fmt::print(out, "Using dbt_project.yml file at {}\n", (dir / "dbt_project.yml").string());
  std::vector<std::string> failures;
  std::string project_problem = ProjectFileProblem(dir / "dbt_project.yml");
  std::optional<Project> project;
  std::string profile_problem = "not checked: dbt_project.yml is invalid";
  if (project_problem.empty()) {
    auto loaded = LoadProject({.project_dir = dir.string(),
                               .profiles_dir = options.profiles_dir,
                               .target = options.target,
                               .vars_yaml = options.vars,
                               .platform_warehouse_url = options.warehouse_url,
                               .declared_env = options.env_vars,
                               .profile_only = true});
    if (loaded.ok()) {
      project = std::move(*loaded);
      profile_problem.clear();
      if (!project->target.profiles_file.empty()) {
        fmt::print(out, "Using profiles.yml file at {}\n", project->target.profiles_file);
      }
    } else {
      profile_problem = loaded.message();
    }
  }
  fmt::print(out, "adapter type: postgres\n");
  fmt::print(out, "Configuration:\n");
  fmt::print(out, "  profiles.yml file [{}]\n",
             profile_problem.empty() ? "OK found and valid" : "ERROR invalid");
  fmt::print(out, "  dbt_project.yml file [{}]\n",
             project_problem.empty() ? "OK found and valid" : "ERROR invalid");
  if (!project_problem.empty()) failures.push_back("Project loading failed: " + project_problem);
  if (project_problem.empty() && !profile_problem.empty())
    failures.push_back("Profile loading failed: " + profile_problem);
  bool git = OnPath("git");
  fmt::print(out, "Required dependencies:\n - git [{}]\n\n", git ? "OK found" : "ERROR");
  if (!git) failures.push_back("git is not on $PATH (deps needs it for git: and hub packages)");
  if (project) {
    const Target& t = project->target;
    fmt::print(out,
               "Connection:\n  host: {}\n  port: {}\n  user: {}\n  database: {}\n"
               "  schema: {}\n",
               t.host, t.port, t.user, t.database, t.schema);
    std::string problem;
    auto conn = pg::Connection::Connect(t.conninfo);
    if (!conn.ok()) {
      problem = conn.message();
    } else if (auto one = conn->Exec("select 1"); !one.ok()) {
      problem = one.message();
    }
    // The connection's error may quote the conninfo; its password never shows.
    problem = project->secrets.Scrub(RedactUrl(problem));
    fmt::print(out, "  Connection test: [{}]\n\n", problem.empty() ? "OK connection ok" : "ERROR");
    if (!problem.empty())
      failures.push_back(fmt::format("Connection test (target '{}'): {}", t.name, problem));
  }
  if (failures.empty()) {
    fmt::print(out, "All checks passed!\n");
    return Status::Ok();
  }
  fmt::print(out, "{} check{} failed:\n", failures.size(), failures.size() == 1 ? "" : "s");
  for (const auto& f : failures) fmt::print(out, "{}\n", f);
  return Status::Error(failures.front());
}

}  // namespace pdv::transform
