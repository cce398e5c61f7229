#pragma once

// A dbt project as read from disk: dbt_project.yml, profiles.yml, models, seeds, singular
// tests, macros and schema.yml files (sources, model/column docs and data tests). Loading
// parses every template once with dbt's "parse" context, which records ref(), source()
// and config() calls, as dbt does; the DAG and resolved configs come from that.

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "transform/config_values.h"
#include "transform/jinja.h"
#include "transform/node_type.h"
#include "transform/secret_mask.h"

namespace pdv::transform {

// Where and how to connect: a profiles.yml output, or the platform's warehouse URL.
struct Target {
  std::string name;      // "dev"
  std::string type;      // "postgres"
  std::string conninfo;  // libpq connection string or URL
  std::string schema;    // default schema for models without a custom one
  std::string database;  // dbname
  std::string host, user;
  int port = 5432;
  int threads = 1;
};

struct Node {
  std::string unique_id;  // model.<package>.<name>, seed..., test..., source.<p>.<s>.<t>
  NodeType resource_type = NodeType::kModel;
  std::string name;
  std::string package_name;  // the root project's name or an installed package's
  // Relative to the root project's folder (a package's files under dbt_packages/<name>/),
  // so that every message names a file the user can open.
  std::string original_file_path;
  std::string path;  // relative to its resource folder (models/, seeds/...)
  std::vector<std::string> fqn;
  std::string raw_code;
  std::shared_ptr<const jinja::Template> tmpl;
  nlohmann::json config = nlohmann::json::object();
  std::string description;
  nlohmann::json columns = nlohmann::json::object();
  std::string schema, alias, database;  // resolved relation
  std::vector<std::string> depends_on;  // unique ids
  std::vector<std::vector<std::string>> refs;
  std::vector<std::vector<std::string>> sources;
  // Data tests.
  std::string test_macro;          // test_not_null ...; empty for a singular test
  std::string test_macro_package;  // the package that defines test_macro
  jinja::ValueDict test_kwargs;
  std::string attached_node;  // the node a generic test checks
  std::string column_name;
  std::string defined_at;  // file:line of a generic test's definition
  // Unit tests (attached_node is the model): the schema file's entry (given, expect,
  // overrides).
  nlohmann::json unit_test;
  // Sources.
  std::string source_name, identifier;
  // A versioned model's version and its model's latest_version ("" unversioned); the
  // version: selection method reads them.
  std::string version, latest_version;
  // A model's `constraints:` (model-level, dbt's shape), and where its properties entry
  // is ("file:line", "" when it has none): what contract errors name.
  nlohmann::json constraints = nlohmann::json::array();
  std::string properties_at;

  std::string materialized() const { return config.value("materialized", "view"); }
  bool enabled() const { return ConfigFlag(config, "enabled", true); }
  // Whether a run makes a relation of it: a model that is not ephemeral, a seed, a snapshot.
  bool Builds() const {
    return (resource_type == NodeType::kModel && materialized() != "ephemeral") ||
           resource_type == NodeType::kSeed || resource_type == NodeType::kSnapshot;
  }
  std::vector<std::string> tags() const;
  // "schema"."alias" (quoted as dbt-postgres quotes).
  std::string RelationName() const;
};

struct LoadOptions {
  std::string project_dir;
  std::string profiles_dir;                           // "": the project folder, then ~/.dbt
  std::string target;                                 // "": the profile's default
  std::string vars_yaml;                              // --vars
  std::optional<std::string> platform_warehouse_url;  // set: no profiles.yml, this target
  // Environment variables the operator declared readable by env_var() in models,
  // besides DBT_ENV_* (--env-var). No secret can be declared (PDV_*, DBT_ENV_SECRET_*).
  std::vector<std::string> declared_env;
  // Where loading's warnings go (a file described but missing): the reporter's Warning.
  // Unset: nowhere.
  std::function<void(const std::string&)> warn;
};

// A package installed under the project's packages-install-path (dbt_packages/).
struct Package {
  std::string name;  // its dbt_project.yml name
  std::string dir;   // absolute
  std::string version;
};

// An on-run-start / on-run-end statement of a project's dbt_project.yml, unrendered.
struct ProjectHook {
  std::string package;  // the project that declares it
  std::string sql;
  std::string where;  // "dbt_project.yml:12"
  int index = 0;      // its place in the project's list
};

struct Project {
  std::string name;
  // dbt's order: the packages' hooks (by package), then the root project's.
  std::vector<ProjectHook> on_run_start, on_run_end;
  std::string profile;
  std::string dir;
  std::string target_path;                         // absolute
  nlohmann::json vars = nlohmann::json::object();  // what var() sees in the root's nodes
  // What var() sees in each package's nodes: the package's own vars, overridden by the
  // root project's (global and scoped to the package), overridden by --vars.
  std::map<std::string, nlohmann::json> package_vars;
  std::vector<Package> packages;
  // dbt_project.yml `dispatch:`: macro_namespace -> search_order.
  std::map<std::string, std::vector<std::string>> dispatch;
  // This invocation, as templates see it (invocation_id, run_started_at in UTC).
  std::string invocation_id;
  std::string run_started_at;         // "2026-12-01 23:20:59.123456+00:00"
  jinja::Value run_started_at_value;  // the same, as a datetime
  // graph.nodes / graph.sources, built on first use in execute mode.
  std::shared_ptr<const jinja::Value> GraphValue() const;
  std::set<std::string> declared_env;  // LoadOptions::declared_env
  // The DBT_ENV_SECRET_* values at load: scrubbed from what the runner prints and writes.
  SecretMask secrets;
  Target target;
  std::map<std::string, Node> nodes;  // by unique id (models, seeds, tests, sources)
  std::shared_ptr<jinja::Environment> env;
  std::vector<std::string> macro_files;

 private:
  // The first node `in` finds in: `from_package`, the root project, then each package.
  const Node* InSearchOrder(const std::string& from_package,
                            const std::function<const Node*(const std::string&)>& in) const;
  struct GraphCache {
    std::once_flag once;
    std::shared_ptr<const jinja::Value> value;
  };
  std::shared_ptr<GraphCache> graph_cache_ = std::make_shared<GraphCache>();

 public:
  // ref(name) from a node of `from_package` ("": root): that package's, then the root's,
  // then any package's. ref(package, name) when `package` is given.
  const Node* FindModelOrSeed(const std::string& name, const std::string& package = "",
                              const std::string& from_package = "") const;
  const Node* FindSource(const std::string& source, const std::string& table,
                         const std::string& from_package = "") const;
  const nlohmann::json& VarsFor(const std::string& package) const;
  bool IsPackage(const std::string& name) const;
};

Result<Project> LoadProject(const LoadOptions& options);

// Which parts of a relation its name shows (dbt's Relation.include()).
struct RelationParts {
  bool database = true, schema = true, identifier = true;
};

// The Jinja value of a relation, as dbt's Relation: renders as "schema"."name", with
// .schema, .name, .identifier, .database, .type, .is_table, .is_view and render(),
// include(), incorporate(), quote().
jinja::Value RelationValue(const std::string& database, const std::string& schema,
                           const std::string& identifier, const std::string& type = "");
jinja::Value RelationValue(const std::string& database, const std::string& schema,
                           const std::string& identifier, const std::string& type,
                           const RelationParts& shown);
// dbt-postgres identifier quoting.
std::string QuoteIdentifier(const std::string& name);
// JSON (from YAML) to a template value and back.
jinja::Value JsonToValue(const nlohmann::json& j);
nlohmann::json ValueToJson(const jinja::Value& v);

}  // namespace pdv::transform
