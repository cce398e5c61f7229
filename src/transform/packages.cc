// packages.yml / dependencies.yml and `pdv transform deps`.

#include "transform/packages.h"

#include <fmt/format.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "common/child_environment.h"
#include "localsvc/child_process.h"
#include "transform/env_access.h"
#include "transform/jinja.h"
#include "transform/secret_mask.h"

namespace pdv::transform {
namespace {

namespace fs = std::filesystem;

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Trim(std::string s) {
  s.erase(0, s.find_first_not_of(" \t\r\n"));
  s.erase(s.find_last_not_of(" \t\r\n") + 1);
  return s;
}

// A package's name (and version) from its dbt_project.yml.
Result<std::pair<std::string, std::string>> ReadPackageName(const fs::path& dir,
                                                            const std::string& what) {
  fs::path file = dir / "dbt_project.yml";
  if (!fs::exists(file)) {
    return Status::Error(
        fmt::format("{}: {} has no dbt_project.yml (not a dbt package)", what, dir.string()));
  }
  try {
    YAML::Node y = YAML::Load(Slurp(file));
    if (!y.IsMap() || !y["name"]) {
      return Status::Error(fmt::format("{}: {}: 'name' is required", what, file.string()));
    }
    return std::pair{y["name"].as<std::string>(),
                     y["version"] ? y["version"].as<std::string>() : std::string()};
  } catch (const YAML::Exception& e) {
    return Status::Error(
        fmt::format("{}: {}:{}: invalid YAML: {}", what, file.string(), e.mark.line + 1, e.msg));
  }
}

// Runs a command (git) in environment `env`; its output goes to `log`, whose text is
// returned.
Result<std::string> Run(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                        const fs::path& log) {
  fs::remove(log);
  Status s = localsvc::RunCommand({.argv = argv, .log_file = log.string(), .env = env},
                                  std::chrono::seconds(600));
  std::string out = Slurp(log);
  fs::remove(log);
  if (!s.ok()) return s;
  return out;
}

// "1.3.0" -> {1, 3, 0}; nullopt when not a version.
std::optional<std::vector<int>> ParseVersion(std::string v) {
  v = Trim(v);
  if (!v.empty() && (v[0] == 'v' || v[0] == 'V')) v.erase(0, 1);
  std::vector<int> parts;
  std::stringstream ss(v);
  std::string part;
  while (std::getline(ss, part, '.')) {
    if (part.empty() || !std::all_of(part.begin(), part.end(), ::isdigit)) return std::nullopt;
    parts.push_back(std::stoi(part));
  }
  if (parts.empty()) return std::nullopt;
  while (parts.size() < 3) parts.push_back(0);
  return parts;
}

// Does `version` meet every comma-separated constraint of `range` (">=1.0.0,<2.0.0",
// "1.3.0", "=1.3.0")?
bool Satisfies(const std::vector<int>& version, const std::string& range) {
  std::stringstream ss(range);
  std::string c;
  while (std::getline(ss, c, ',')) {
    c = Trim(c);
    if (c.empty()) continue;
    std::string op;
    while (!c.empty() && (c[0] == '<' || c[0] == '>' || c[0] == '=')) {
      op += c[0];
      c.erase(0, 1);
    }
    auto want = ParseVersion(c);
    if (!want) return false;
    int cmp = version < *want ? -1 : version > *want ? 1 : 0;
    bool ok = op == ">="   ? cmp >= 0
              : op == ">"  ? cmp > 0
              : op == "<=" ? cmp <= 0
              : op == "<"  ? cmp < 0
                           : cmp == 0;
    if (!ok) return false;
  }
  return true;
}

class Installer {
 public:
  Installer(const DepsOptions& options, fs::path project, fs::path staging,
            const SecretMask& secrets)
      : options_(options),
        project_(std::move(project)),
        staging_(std::move(staging)),
        secrets_(secrets),
        git_env_(FilterEnvironment(environ, HelperMayInherit)) {}

  Result<InstalledPackage> Install(const PackageSpec& spec, size_t index) {
    switch (spec.kind) {
      case PackageSpec::Kind::kLocal:
        return InstallLocal(spec);
      case PackageSpec::Kind::kGit:
        return InstallGit(spec, spec.location, spec.revision, index);
      case PackageSpec::Kind::kHub:
        return InstallHub(spec, index);
    }
    return Status::Error("unknown package kind");
  }

 private:
  Result<InstalledPackage> Place(const PackageSpec& spec, const fs::path& from, bool link,
                                 const std::string& source, const std::string& revision) {
    auto name = ReadPackageName(from, spec.defined_at);
    if (!name.ok()) return name.status();
    fs::path to = staging_ / name->first;
    if (fs::exists(fs::symlink_status(to))) {
      if (spec.transitive) {  // already brought by an earlier entry
        if (!link) fs::remove_all(from);
        return InstalledPackage{name->first, source, "", /*duplicate=*/true};
      }
      return Status::Error(
          fmt::format("{}: a second package named '{}'", spec.defined_at, name->first));
    }
    std::error_code ec;
    if (link) {
      fs::create_directory_symlink(from, to, ec);
    } else {
      fs::rename(from, to, ec);
    }
    if (ec) {
      return Status::Error(
          fmt::format("{}: cannot install {}: {}", spec.defined_at, from.string(), ec.message()));
    }
    return InstalledPackage{name->first, source, revision.empty() ? name->second : revision};
  }

  Result<InstalledPackage> InstallLocal(const PackageSpec& spec) {
    fs::path from = fs::path(spec.location).is_absolute() ? fs::path(spec.location)
                                                          : fs::path(spec.base_dir) / spec.location;
    from = fs::weakly_canonical(from);
    if (!fs::is_directory(from)) {
      return Status::Error(
          fmt::format("{}: local package {} is not a folder", spec.defined_at, from.string()));
    }
    return Place(spec, from, /*link=*/true, "local:" + spec.location, "");
  }

  Result<InstalledPackage> InstallGit(const PackageSpec& spec, const std::string& url,
                                      const std::string& revision, size_t index) {
    fs::path clone = staging_ / fmt::format(".clone-{}", index);
    fs::path log = staging_ / fmt::format(".git-{}.log", index);
    // A relative path is the project's, as for local packages.
    std::string where = url;
    if (url.find("://") == std::string::npos && url.find('@') == std::string::npos &&
        fs::path(url).is_relative()) {
      where = (fs::path(spec.base_dir) / url).string();
    }
    auto cloned = Run({"git", "clone", "--quiet", where, clone.string()}, git_env_, log);
    if (!cloned.ok()) {
      return Status::Error(
          fmt::format("{}: git clone {}: {}", spec.defined_at, url, cloned.status().message()));
    }
    if (!revision.empty()) {
      auto checked =
          Run({"git", "-C", clone.string(), "checkout", "--quiet", revision, "--"}, git_env_, log);
      if (!checked.ok()) {
        return Status::Error(fmt::format("{}: {} has no revision '{}': {}", spec.defined_at, url,
                                         revision, checked.status().message()));
      }
    }
    auto head = Run({"git", "-C", clone.string(), "rev-parse", "HEAD"}, git_env_, log);
    if (!head.ok()) return Status::Error(spec.defined_at + ": " + head.status().message());
    // The clone keeps the URL as its remote and in its reflogs ("clone: from <url>"): a
    // token in it would stay on disk under dbt_packages/<name>/.git.
    if (std::string shown = secrets_.Scrub(where); shown != where) {
      auto reset =
          Run({"git", "-C", clone.string(), "remote", "set-url", "origin", shown}, git_env_, log);
      if (!reset.ok()) return Status::Error(spec.defined_at + ": " + reset.status().message());
      std::error_code ec;
      fs::remove_all(clone / ".git" / "logs", ec);
      if (ec) {
        return Status::Error(fmt::format("{}: cannot remove {}: {}", spec.defined_at,
                                         (clone / ".git" / "logs").string(), ec.message()));
      }
    }
    fs::path root = spec.subdirectory.empty() ? clone : clone / spec.subdirectory;
    auto placed = Place(spec, root, /*link=*/false, "git:" + secrets_.Scrub(url), Trim(*head));
    if (!spec.subdirectory.empty()) fs::remove_all(clone);
    return placed;
  }

  Result<InstalledPackage> InstallHub(const PackageSpec& spec, size_t index) {
    std::string dir = options_.packages_dir;
    if (dir.empty()) {
      if (const char* env = std::getenv("PDV_DBT_PACKAGES_DIR")) dir = env;
    }
    if (dir.empty()) {
      return Status::Error(fmt::format(
          "{}: hub package '{}' needs a local copy: no package hub is reachable, so pass "
          "--packages-dir (or set PDV_DBT_PACKAGES_DIR) to a folder holding it",
          spec.defined_at, spec.location));
    }
    std::string name = spec.location.substr(spec.location.find('/') + 1);
    std::string dashed = name;
    std::replace(dashed.begin(), dashed.end(), '_', '-');
    fs::path found;
    for (const fs::path& c :
         {fs::path(dir) / spec.location, fs::path(dir) / name, fs::path(dir) / dashed}) {
      if (fs::is_directory(c)) {
        found = c;
        break;
      }
    }
    if (found.empty()) {
      return Status::Error(fmt::format("{}: hub package '{}' is not in {} (looked for {}/, {}/)",
                                       spec.defined_at, spec.location, dir, spec.location, name));
    }
    if (fs::exists(found / ".git")) {
      // A repository: its tags are the versions; the highest one in range is installed.
      fs::path log = staging_ / fmt::format(".git-{}.log", index);
      auto tags = Run({"git", "-C", found.string(), "tag", "--list"}, git_env_, log);
      if (!tags.ok()) return Status::Error(spec.defined_at + ": " + tags.status().message());
      std::optional<std::vector<int>> best;
      std::string best_tag;
      std::stringstream ss(*tags);
      std::string tag;
      while (std::getline(ss, tag)) {
        auto v = ParseVersion(tag);
        if (v && Satisfies(*v, spec.version) && (!best || *v > *best)) {
          best = v;
          best_tag = Trim(tag);
        }
      }
      if (!best && !spec.version.empty()) {
        return Status::Error(fmt::format("{}: {} has no tagged version in range '{}'",
                                         spec.defined_at, found.string(), spec.version));
      }
      auto placed = InstallGit(spec, found.string(), best_tag, index);
      if (placed.ok() && !placed->duplicate) {
        placed->source = "hub:" + spec.location;
        placed->revision = best_tag.empty() ? placed->revision : best_tag;
      }
      return placed;
    }
    // The hub's layout: one folder per release (<name>/1.3.0/, <name>/1.4.1/); the highest
    // one in range is installed, as the hub would.
    std::optional<std::vector<int>> best;
    fs::path best_dir;
    std::string releases;
    for (const auto& e : fs::directory_iterator(found)) {
      auto v = ParseVersion(e.path().filename().string());
      if (!v || !e.is_directory() || !fs::exists(e.path() / "dbt_project.yml")) continue;
      releases += (releases.empty() ? "" : ", ") + e.path().filename().string();
      if (Satisfies(*v, spec.version) && (!best || *v > *best)) {
        best = v;
        best_dir = e.path();
      }
    }
    if (!releases.empty() && !best) {
      return Status::Error(fmt::format("{}: {} has no release in range '{}' (it has {})",
                                       spec.defined_at, found.string(), spec.version, releases));
    }
    if (best) found = best_dir;
    auto version = ReadPackageName(found, spec.defined_at);
    if (!version.ok()) return version.status();
    auto v = ParseVersion(version->second);
    if (!best && !spec.version.empty() && (!v || !Satisfies(*v, spec.version))) {
      // A package's own dbt_project.yml `version:` is not its release: the hub versions
      // packages by their release tags, and dbt_utils keeps '0.1.0' there forever. A plain
      // folder has no releases to choose from, so it is what the user means to install.
      fmt::print(options_.out,
                 "Note: {} is a plain folder (no release tags or release folders); its "
                 "dbt_project.yml version '{}' is not a release number, so it is installed "
                 "as is for '{}'\n",
                 found.string(), version->second, spec.version);
    }
    fs::path copy = staging_ / fmt::format(".copy-{}", index);
    std::error_code ec;
    fs::copy(found, copy, fs::copy_options::recursive, ec);
    if (ec) {
      return Status::Error(
          fmt::format("{}: cannot copy {}: {}", spec.defined_at, found.string(), ec.message()));
    }
    return Place(spec, copy, /*link=*/false, "hub:" + spec.location, "");
  }

  const DepsOptions& options_;
  fs::path project_;
  fs::path staging_;
  const SecretMask& secrets_;
  // git needs none of the platform's secrets, nor the DBT_ENV_SECRET_* ones: a URL that
  // needs a token already carries it.
  std::vector<std::string> git_env_;
};

// dbt renders packages.yml with env_var() before it is read as YAML: a git URL may carry a
// token from DBT_ENV_SECRET_*. The file may be a package's (transitive): like the project's,
// it reads no PDV_* variable (transform/env_access.h).
Result<std::string> RenderWithEnv(const std::string& text, const std::string& file) {
  auto tmpl = jinja::Template::Parse(text, file);
  if (!tmpl.ok()) return tmpl.status();
  jinja::ValueDict globals;
  globals.Set("env_var", jinja::Value(jinja::Function([](const jinja::Arguments& a) {
                const jinja::Value* name = a.Get(0, "var");
                if (!name) throw jinja::TemplateError(a.line, "env_var() needs a name");
                if (std::string refused = EnvVarRefusal(name->Str(), EnvScope::kPackages, {});
                    !refused.empty()) {
                  throw jinja::TemplateError(a.line, refused);
                }
                if (const char* v = std::getenv(name->Str().c_str())) {
                  return jinja::Value(std::string(v));
                }
                if (const jinja::Value* d = a.Get(1, "default")) return *d;
                throw jinja::TemplateError(
                    a.line, fmt::format("env var required but not provided: '{}'", name->Str()));
              })));
  return jinja::Environment().Render(**tmpl, globals);
}

std::string VersionText(const YAML::Node& v) {
  if (!v) return "";
  if (v.IsSequence()) {
    std::string out;
    for (const auto& e : v) out += (out.empty() ? "" : ",") + e.as<std::string>();
    return out;
  }
  return v.as<std::string>();
}

}  // namespace

Result<std::vector<PackageSpec>> ReadPackageSpecs(const std::string& project_dir) {
  fs::path dir(project_dir);
  std::vector<fs::path> files;
  for (const char* name : {"packages.yml", "dependencies.yml"}) {
    if (fs::exists(dir / name)) files.push_back(dir / name);
  }
  std::vector<PackageSpec> specs;
  for (const auto& file : files) {
    std::string name = file.filename().string();
    auto text = RenderWithEnv(Slurp(file), name);
    if (!text.ok()) return text.status();
    YAML::Node y;
    try {
      y = YAML::Load(*text);
    } catch (const YAML::Exception& e) {
      return Status::Error(fmt::format("{}:{}: invalid YAML: {}", name, e.mark.line + 1, e.msg));
    }
    if (!y || y.IsNull()) continue;
    if (!y.IsMap()) return Status::Error(name + ":1: expected a mapping with 'packages:'");
    if (!y["packages"]) continue;
    if (!specs.empty()) {
      return Status::Error(fmt::format(
          "{}: packages are listed in both packages.yml and dependencies.yml; keep one", name));
    }
    if (!y["packages"].IsSequence()) {
      return Status::Error(
          fmt::format("{}:{}: packages must be a list", name, y["packages"].Mark().line + 1));
    }
    for (const auto& e : y["packages"]) {
      PackageSpec s;
      s.defined_at = fmt::format("{}:{}", name, e.Mark().line + 1);
      s.base_dir = dir.string();
      if (!e.IsMap()) return Status::Error(s.defined_at + ": a package entry is a mapping");
      try {
        if (e["local"]) {
          s.kind = PackageSpec::Kind::kLocal;
          s.location = e["local"].as<std::string>();
        } else if (e["git"]) {
          s.kind = PackageSpec::Kind::kGit;
          s.location = e["git"].as<std::string>();
          if (e["revision"]) s.revision = e["revision"].as<std::string>();
          if (e["subdirectory"]) s.subdirectory = e["subdirectory"].as<std::string>();
        } else if (e["package"]) {
          s.kind = PackageSpec::Kind::kHub;
          s.location = e["package"].as<std::string>();
          s.version = VersionText(e["version"]);
        } else if (e["tarball"] || e["private"]) {
          return Status::Error(s.defined_at +
                               ": tarball and private packages are not supported (use git: or "
                               "local:)");
        } else {
          return Status::Error(s.defined_at +
                               ": a package entry needs local:, git: or package: (hub)");
        }
      } catch (const YAML::Exception& ex) {
        return Status::Error(fmt::format("{}: {}", s.defined_at, ex.msg));
      }
      specs.push_back(std::move(s));
    }
  }
  return specs;
}

namespace {

Result<std::vector<InstalledPackage>> InstallUnscrubbed(const DepsOptions& options,
                                                        const SecretMask& secrets) {
  fs::path project =
      fs::absolute(options.project_dir.empty() ? "." : options.project_dir).lexically_normal();
  auto specs = ReadPackageSpecs(project.string());
  if (!specs.ok()) return specs.status();
  std::string install_name = kPackagesInstallPath;
  try {
    YAML::Node y = YAML::Load(Slurp(project / "dbt_project.yml"));
    if (y.IsMap() && y["packages-install-path"])
      install_name = y["packages-install-path"].as<std::string>();
  } catch (const YAML::Exception& e) {
    return Status::Error(
        fmt::format("dbt_project.yml:{}: invalid YAML: {}", e.mark.line + 1, e.msg));
  }
  fs::path install = project / install_name;
  fs::path staging = project / fmt::format(".{}.new-{}", install_name, ::getpid());
  fs::remove_all(staging);
  fs::create_directories(staging);
  Installer installer(options, project, staging, secrets);
  std::vector<InstalledPackage> installed;
  std::vector<PackageSpec> queue = std::move(*specs);
  for (size_t i = 0; i < queue.size(); ++i) {
    auto r = installer.Install(queue[i], i);
    if (!r.ok()) {
      fs::remove_all(staging);
      return r.status();
    }
    if (r->duplicate) continue;
    fmt::print(options.out, "Installed {} ({})\n", r->name,
               secrets.Scrub(r->revision.empty() ? r->source : r->source + " @ " + r->revision));
    // The package's own packages, named relative to it.
    fs::path placed = staging / r->name;
    auto inner = ReadPackageSpecs(placed.string());
    if (!inner.ok()) {
      fs::remove_all(staging);
      return Status::Error(fmt::format("{}/{}: {}", install_name, r->name, inner.message()));
    }
    for (auto& spec : *inner) {
      spec.transitive = true;
      spec.defined_at = fmt::format("{}/{}/{}", install_name, r->name, spec.defined_at);
      // A local package's relative paths are its source folder's, not the symlink's.
      spec.base_dir = fs::canonical(placed).string();
      queue.push_back(std::move(spec));
    }
    installed.push_back(std::move(*r));
  }
  fs::remove_all(install);
  fs::rename(staging, install);
  YAML::Emitter lock;
  lock << YAML::BeginMap << YAML::Key << "packages" << YAML::Value << YAML::BeginSeq;
  for (const auto& p : installed) {
    lock << YAML::BeginMap << YAML::Key << "name" << YAML::Value << p.name << YAML::Key << "source"
         << YAML::Value << p.source << YAML::Key << "revision" << YAML::Value << p.revision
         << YAML::EndMap;
  }
  lock << YAML::EndSeq << YAML::EndMap;
  std::ofstream(project / "package-lock.yml") << secrets.Scrub(lock.c_str()) << "\n";
  fmt::print(options.out, "{} package(s) installed in {}\n", installed.size(), install_name);
  return installed;
}

}  // namespace

Result<std::vector<InstalledPackage>> InstallPackages(const DepsOptions& options) {
  // A git URL rendered from DBT_ENV_SECRET_* is in the sources printed and locked (scrubbed
  // where they are made) and in git's errors, which quote its command line.
  SecretMask secrets = SecretMask::FromEnvironment(environ);
  auto installed = InstallUnscrubbed(options, secrets);
  if (!installed.ok()) return Status::Error(secrets.Scrub(installed.message()));
  return installed;
}

}  // namespace pdv::transform
