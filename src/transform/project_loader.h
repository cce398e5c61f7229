// Internal to LoadProject: the Loader class that reads a dbt project folder, and the
// file-local helpers its parts share. Its member functions are defined in project_loader.cc,
// project_files.cc, project_properties.cc and project_configs.cc.
#pragma once

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "transform/context.h"
#include "transform/project.h"

namespace pdv::transform::project_internal {

namespace fs = std::filesystem;
using jinja::Value;
using jinja::ValueDict;
using jinja::ValueList;

// A load error carrying its message; thrown inside the loader only.
struct LoadError {
  std::string message;
};

std::string ReadFile(const fs::path& p);

nlohmann::json YamlToJson(const YAML::Node& n);

YAML::Node LoadYaml(const std::string& text, const std::string& file);

// Lexical, so a package installed as a symlink keeps its dbt_packages/<name>/ path.
std::string Rel(const fs::path& p, const fs::path& base);

std::vector<std::string> PathList(const YAML::Node& project, const char* key, const char* fallback);

std::vector<fs::path> FilesUnder(const fs::path& dir, const std::string& ext);

// n[key], or an undefined node when n is not a map (never throws).
YAML::Node Child(const YAML::Node& n, const std::string& key);

// dbt's config keys: anything else under `models:` that is not a `+key` is a folder name.
bool IsConfigKey(const std::string& key);

// The configs that dbt_project.yml's `<resource>:` tree gives a node at `fqn` (project
// name, folders, name), outermost first.
nlohmann::json TreeConfig(const YAML::Node& tree, const std::vector<std::string>& fqn);

std::string ShortHash(const std::string& text);

class Loader {
 public:
  Loader(const LoadOptions& options, const SecretMask& secrets) : options_(options) {
    p_.secrets = secrets;
  }

  Project Load();

 private:
  // The root project or one installed package, while its files load.
  struct PackageDir {
    std::string name;
    fs::path dir;
    YAML::Node yml;  // its dbt_project.yml
  };

  const PackageDir* FindUnit(const std::string& name) const;

  // The packages under packages-install-path, each with its dbt_project.yml. A
  // packages.yml / dependencies.yml that lists more packages than are installed is an
  // error that says to run `pdv transform deps`, as dbt does.
  std::vector<PackageDir> InstalledPackages(const YAML::Node& yml);

  void LoadMacros(const PackageDir& u);

  void LoadResources(const PackageDir& u);

  // snapshots/*.sql: one {% snapshot name %} block per file.
  void AddSnapshotFile(const fs::path& f, const fs::path& root, const PackageDir& u);

  void AddSnapshot(const std::string& name, const std::string& file, const std::string& path,
                   const std::string& code, std::shared_ptr<const jinja::Template> tmpl,
                   const PackageDir& u);

  // The config dbt_project.yml's `<resource>:` tree gives a node of `u` at `path` (its
  // folders and name): the package's own tree, then the root project's entry for the
  // package, which overrides it.
  nlohmann::json ResourceConfig(const PackageDir& u, const std::string& resource,
                                const std::vector<std::string>& path);

  // dbt renders dbt_project.yml's values ("{{ 'table' if target.name == 'prod' else
  // 'view' }}"), all but the hooks, which render when they run.
  void RenderConfigValues(nlohmann::json& config, const std::string& package);

  void LoadDispatch(const YAML::Node& yml);

  // Package `u`'s vars: its own (global ones and those scoped to it), then the root
  // project's global ones and those scoped to `u`, then --vars.
  void LoadPackageVars(const PackageDir& u);

  void LoadVars(const YAML::Node& yml);

  void LoadTarget();

  void AddMacroText(const std::string& text, const std::string& name, const std::string& package);
  void AddMacroFile(const fs::path& f, const std::string& package);

  void AddModel(const fs::path& f, const fs::path& root, const PackageDir& u);

  // A model's or seed's original_file_path, path (under `root`) and fqn (package, folders,
  // name); n.name must be set.
  void SetPathAndFqn(Node& n, const fs::path& f, const fs::path& root, const PackageDir& u);

  void AddSeed(const fs::path& f, const fs::path& root, const PackageDir& u);

  struct UnitSpec {
    nlohmann::json entry;  // the schema file's unit_tests entry
    std::string package, file;
    int line;
  };

  struct TestSpec {
    std::string test;          // not_null ...
    std::string test_package;  // dbt_utils for dbt_utils.expression_is_true; "" unqualified
    std::string package;       // of the schema file
    nlohmann::json kwargs;     // arguments besides model/column_name
    nlohmann::json config;     // severity ...
    std::string attached;      // unique id
    std::string attached_name;
    std::string column;
    std::string file;
    int line = 0;
  };

  void CollectTests(const YAML::Node& tests, const std::string& attached, const std::string& name,
                    const std::string& column, const std::string& file, const std::string& package);

  void LoadSchemaFile(const fs::path& f, const std::string& package);
  // A model entry with `versions:` (model_versions.cc): each version's file becomes the
  // node model.<package>.<name>.v<v>, with the model's properties and then its own.
  void ApplyVersions(const YAML::Node& model, const std::string& file, const std::string& package);

  // Renders each model in parse mode: records refs, sources and in-file config().
  void ParseModels();

  // Renders `n` in parse mode: its config() calls and refs/sources are recorded.
  void ParseRender(Node& n);

  void RecordDependencies(Node& n, const ContextCapture& capture);

  void ResolveRelation(Node& n);

  void AddSingularTests(const PackageDir& u);

  void AddSingularTest(const fs::path& f, const fs::path& dir, const PackageDir& u);

  void AddGenericTest(TestSpec& spec);

  // Calls a generic test's macro in parse mode: its config() calls (dbt_utils sets
  // fail_calc that way) become the test's config, under the schema file's, as in dbt.
  void ParseTestMacro(Node& n, const Node& attached);

  // A unit test: attached to its model, depending on the inputs it gives rows for (their
  // columns type the rows, so they are built first, as in dbt).
  void AddUnitTest(const UnitSpec& spec);
  // A given or expect entry's `fixture: name`: the file's text (tests/fixtures/) as its
  // rows.
  void LoadFixture(nlohmann::json& entry, const PackageDir& u, const std::string& where,
                   const std::string& test);

  void ResolveDependencies();

  // Warnings for config keys pdv does not act on (config_check.cc).
  void CheckConfigKeys();
  void WarnAboutConfig(const std::string& key, const std::string& where);

  // Each project's on-run-start / on-run-end hooks, in dbt's order (hooks.cc).
  void LoadProjectHooks();

  // Docs blocks of every project, and descriptions' doc() references resolved to them
  // (docs_blocks.cc).
  void LoadDocs();

  LoadOptions options_;
  fs::path dir_;
  YAML::Node root_yml_;
  std::vector<PackageDir> units_;  // the installed packages, then the root project
  nlohmann::json cli_vars_ = nlohmann::json::object();
  Project p_;
  std::vector<TestSpec> pending_tests_;
  std::vector<UnitSpec> pending_unit_tests_;
  std::map<std::string, std::vector<int>> ref_lines_, source_lines_;
  ContextCapture scratch_;
  std::set<std::string> warned_configs_;  // "where\nkey"
};

}  // namespace pdv::transform::project_internal
