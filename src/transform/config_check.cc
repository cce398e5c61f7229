// Loader: configs pdv does not act on are warned about, never silently dropped: a key
// that is no dbt config (a typo, or a custom key only templates read through config.get),
// and a dbt config pdv does not implement, each named with the file (and line) that sets it.

#include <fmt/format.h>

#include <functional>
#include <set>

#include "transform/project_loader.h"

namespace pdv::transform::project_internal {
namespace {

// dbt-core's and dbt-postgres' configs, for every resource type.
const std::set<std::string>& DbtConfigs() {
  static const std::set<std::string> kKeys = {"enabled",
                                              "tags",
                                              "meta",
                                              "docs",
                                              "pre_hook",
                                              "post_hook",
                                              "database",
                                              "schema",
                                              "alias",
                                              "persist_docs",
                                              "full_refresh",
                                              "materialized",
                                              "grants",
                                              "contract",
                                              "group",
                                              "access",
                                              "packages",
                                              "event_time",
                                              "quoting",
                                              "column_types",
                                              "quote_columns",
                                              "delimiter",
                                              "unique_key",
                                              "incremental_strategy",
                                              "on_schema_change",
                                              "on_configuration_change",
                                              "indexes",
                                              "unlogged",
                                              "sql_header",
                                              "batch_size",
                                              "lookback",
                                              "begin",
                                              "concurrent_batches",
                                              "incremental_predicates",
                                              "merge_update_columns",
                                              "merge_exclude_columns",
                                              "strategy",
                                              "updated_at",
                                              "check_cols",
                                              "target_schema",
                                              "target_database",
                                              "invalidate_hard_deletes",
                                              "hard_deletes",
                                              "snapshot_meta_column_names",
                                              "dbt_valid_to_current",
                                              "severity",
                                              "warn_if",
                                              "error_if",
                                              "fail_calc",
                                              "limit",
                                              "where",
                                              "store_failures",
                                              "store_failures_as",
                                              "freshness",
                                              "loaded_at_field",
                                              "loaded_at_query",
                                              "identifier",
                                              "bind",
                                              "docs",
                                              "copy_grants",
                                              "static_analysis",
                                              "description",
                                              "name",
                                              "columns",
                                              "tests",
                                              "data_tests"};
  return kKeys;
}

// dbt configs that change what dbt-postgres builds and that pdv does not implement yet.
const std::set<std::string>& Unimplemented() {
  static const std::set<std::string> kKeys = {"unlogged",
                                              "sql_header",
                                              "incremental_predicates",
                                              "merge_update_columns",
                                              "merge_exclude_columns",
                                              "snapshot_meta_column_names",
                                              "target_database",
                                              "quoting"};
  return kKeys;
}

std::string Normal(std::string key) {
  if (!key.empty() && key[0] == '+') key.erase(0, 1);
  if (key == "pre-hook") return "pre_hook";
  if (key == "post-hook") return "post_hook";
  return key;
}

}  // namespace

void Loader::WarnAboutConfig(const std::string& key, const std::string& where) {
  if (!options_.warn) return;
  std::string k = Normal(key);
  if (!warned_configs_.insert(where + "\n" + k).second) return;
  if (!DbtConfigs().count(k)) {
    options_.warn(fmt::format(
        "{}: '{}' is not a dbt config; pdv builds nothing differently for it (templates can "
        "still read it with config.get)",
        where, k));
  } else if (Unimplemented().count(k)) {
    options_.warn(
        fmt::format("{}: config '{}' is not supported by pdv transform and has no "
                    "effect",
                    where, k));
  }
}

void Loader::CheckConfigKeys() {
  // dbt_project.yml trees, with their lines.
  std::set<std::string> from_project;  // keys warned about there, not again per node
  std::function<void(const YAML::Node&, const std::string&)> walk = [&](const YAML::Node& level,
                                                                        const std::string& file) {
    if (!level || !level.IsMap()) return;
    for (const auto& kv : level) {
      std::string key = kv.first.as<std::string>("");
      std::string where = fmt::format("{}:{}", file, kv.first.Mark().line + 1);
      if (key.starts_with("+") || (!kv.second.IsMap() && !IsConfigKey(key))) {
        WarnAboutConfig(key, where);
        from_project.insert(Normal(key));
      } else if (kv.second.IsMap() && !IsConfigKey(key)) {
        walk(kv.second, file);  // a folder, a package or a node name
      }
    }
  };
  for (const auto& u : units_) {
    std::string file = u.name == p_.name ? "dbt_project.yml" : Rel(u.dir / "dbt_project.yml", dir_);
    for (const char* resource :
         {"models", "seeds", "snapshots", "tests", "data_tests", "sources", "unit_tests"}) {
      walk(Child(u.yml, resource), file);
    }
  }
  // What config() calls and property files set, by node (their files named, keys reported
  // once per file).
  for (const auto& [id, n] : p_.nodes) {
    if (!n.config.is_object()) continue;
    std::string where = n.original_file_path;
    for (const auto& [key, value] : n.config.items()) {
      if (DbtConfigs().count(Normal(key)) && !Unimplemented().count(Normal(key))) continue;
      if (!from_project.count(Normal(key))) WarnAboutConfig(key, where);
    }
  }
}

}  // namespace pdv::transform::project_internal
