#pragma once

// dbt's Jinja context for one node: ref(), source(), config(), this, is_incremental(),
// var(), env_var(), target, log(), exceptions. In parse mode ref/source/config calls are
// recorded (and refs to unknown nodes allowed, reported later by the graph); in execute
// mode refs resolve to relations, ephemeral models to their CTE names.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "transform/env_access.h"
#include "transform/project.h"

namespace pdv::transform {

class Adapter;

struct ContextCapture {
  std::vector<std::pair<std::vector<std::string>, int>> refs;     // args, line
  std::vector<std::pair<std::vector<std::string>, int>> sources;  // args, line
  nlohmann::json config = nlohmann::json::object();
  std::vector<std::string> ephemerals;  // unique ids of ephemeral models referenced
};

// A statement's result as templates see it: dbt's agate table (.rows, .columns[i] with
// .name and .values(), .column_names) and the server's command status ("SELECT 3").
struct QueryResult {
  jinja::Value table;
  std::string status;
};

struct ContextOptions {
  bool parse = false;
  // What env_var() may read (transform/env_access.h): profiles.yml any variable but
  // PDV_*; models, macros, tests, schema files only DBT_ENV_* other than DBT_ENV_SECRET_*
  // and the declared ones, so a project cannot read a secret into SQL or logs.
  EnvScope env_scope = EnvScope::kProject;
  // Execute mode: what is_incremental() answers (the runner decides it, see
  // Runner::Incremental).
  bool incremental = false;
  // Execute mode: runs a statement for run_query(), adapter.execute() and the adapter's
  // catalog lookups; errors are template errors.
  std::function<Result<QueryResult>(const std::string& sql)> run_query;
  // Execute mode: the warehouse's adapter (borrowed), for the templates' `adapter`
  // object: quoting, its type and catalog lookups. Null: compile without a database.
  Adapter* adapter = nullptr;
  // Unit tests: what ref()/source() give for these unique ids ("this": `this`), and the
  // overrides of var(), env_var() and of context names (macros, is_incremental).
  std::map<std::string, jinja::Value> relation_overrides;
  nlohmann::json var_overrides = nlohmann::json::object();
  std::map<std::string, std::string> env_overrides;
  std::map<std::string, jinja::Value> macro_overrides;
  // The command being run (flags.WHICH): run, test, build, compile ...
  std::string which;
  bool full_refresh = false;
  // Where the templates' log(info=True)/print() lines and exceptions.warn() go (the
  // runner's reporter). Unset (parsing, compiling without a runner): stderr.
  std::function<void(const std::string& text)> message;
  std::function<void(const std::string& text)> warning;
};

// Builds the globals for rendering `node`. `capture` must outlive the renders.
jinja::ValueDict MakeContext(const Project& project, const Node& node,
                             const ContextOptions& options, ContextCapture* capture);

// What ref() gives for an ephemeral model: the name of its CTE, marked is_cte.
jinja::Value EphemeralValue(const Node& node);

// dbt's `model`/`node` object: name, unique_id, resource_type, schema, alias, fqn, config.
jinja::Value NodeValue(const Node& node);

// dbt's Column (adapter.get_columns_in_relation, api.Column): name, quoted, dtype,
// data_type, the sizes and the is_* tests.
jinja::Value ColumnValue(const std::string& name, const std::string& dtype,
                         const jinja::Value& char_size, const jinja::Value& precision,
                         const jinja::Value& scale);

// Merges config `add` into `into` with dbt's rules: tags and hooks accumulate, other keys
// replace; "pre-hook"/"post-hook" are spelled pre_hook/post_hook.
void MergeConfig(nlohmann::json& into, const nlohmann::json& add);

}  // namespace pdv::transform
