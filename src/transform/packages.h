#pragma once

// dbt packages: what packages.yml (or dependencies.yml) asks for, and `pdv transform deps`,
// which installs them under the project's packages-install-path (dbt_packages/).
//
// Entries: `local: <path>` (a symlink, as dbt makes), `git: <url or path>` with optional
// `revision:` and `subdirectory:`, and hub entries `package: <owner>/<name>` with
// `version:`. No hub is reachable from where the platform runs, so hub packages come from
// a directory (--packages-dir, PDV_DBT_PACKAGES_DIR) holding <name>/ or <owner>/<name>/:
// a git repository of the package (its release tags are the versions, as on the hub), a
// folder of releases (<name>/1.4.1/), or the package itself. Like the hub, versions come
// from the releases, never from the package's dbt_project.yml `version:` (dbt_utils keeps
// '0.1.0' there): a plain package folder is installed whatever that line says.

#include <cstdio>
#include <string>
#include <vector>

#include "common/status.h"

namespace pdv::transform {

inline constexpr char kPackagesInstallPath[] = "dbt_packages";

struct PackageSpec {
  enum class Kind { kLocal, kGit, kHub };
  Kind kind = Kind::kLocal;
  std::string location;      // path, git URL, or owner/name
  std::string revision;      // git: branch, tag or commit ("": the default branch)
  std::string version;       // hub: "1.3.0", ">=1.0.0,<2.0.0" (the range's lower bound is kept)
  std::string subdirectory;  // git: the package's folder inside the repository
  std::string defined_at;    // packages.yml:<line> (a package's: dbt_packages/<it>/packages.yml)
  std::string base_dir;      // what a relative local: or git: path is relative to
  bool transitive = false;   // listed by a package, not by the project
};

// The entries of <project_dir>/packages.yml or dependencies.yml (none when neither
// exists). Errors name file:line.
Result<std::vector<PackageSpec>> ReadPackageSpecs(const std::string& project_dir);

struct DepsOptions {
  std::string project_dir;
  std::string packages_dir;  // hub packages; "" = $PDV_DBT_PACKAGES_DIR
  std::FILE* out = stdout;
};

struct InstalledPackage {
  std::string name;  // from its dbt_project.yml
  std::string source;
  std::string revision;    // the git commit installed, or the version
  bool duplicate = false;  // a transitive entry for a package already installed
};

// Installs every entry anew (the install path is replaced, so nothing stale stays), then
// the packages those packages list, and writes package-lock.yml. A package that two
// entries bring is installed once: the first entry wins, as in a breadth-first walk. On an error
// nothing of the earlier install is lost: packages are fetched into a fresh folder that replaces
// the old one only when all succeeded.
Result<std::vector<InstalledPackage>> InstallPackages(const DepsOptions& options);

}  // namespace pdv::transform
