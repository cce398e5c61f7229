// Loader: config resolution (dbt_project.yml trees, RenderConfigValues), parse rendering,
// relations and dependencies.

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "common/conninfo.h"
#include "common/random_secret.h"
#include "transform/builtin_macros.h"
#include "transform/context.h"
#include "transform/datetime_module.h"
#include "transform/freshness.h"
#include "transform/global_project.h"
#include "transform/jinja_ast.h"
#include "transform/packages.h"
#include "transform/project_loader.h"

namespace pdv::transform::project_internal {

nlohmann::json Loader::ResourceConfig(const PackageDir& u, const std::string& resource,
                                      const std::vector<std::string>& path) {
  // `+key`s at the top of the root's tree apply to every project's nodes.
  nlohmann::json config = nlohmann::json::object();
  YAML::Node top = Child(root_yml_, resource);
  if (top && top.IsMap()) {
    for (const auto& kv : top) {
      std::string key = kv.first.as<std::string>();
      if (key.starts_with("+")) MergeConfig(config, {{key, YamlToJson(kv.second)}});
    }
  }
  MergeConfig(config, TreeConfig(Child(Child(u.yml, resource), u.name), path));
  if (u.name != p_.name) {
    MergeConfig(config, TreeConfig(Child(Child(root_yml_, resource), u.name), path));
  }
  RenderConfigValues(config, u.name);
  std::string where = u.name == p_.name ? "dbt_project.yml" : Rel(u.dir / "dbt_project.yml", dir_);
  if (Status s = NormalizeBoolConfigs(
          config, fmt::format("{} ({}: {})", where, resource, fmt::join(path, ".")));
      !s.ok()) {
    throw LoadError{s.message()};
  }
  return config;
}

void Loader::RenderConfigValues(nlohmann::json& config, const std::string& package) {
  for (auto& [key, value] : config.items()) {
    if (key == "pre_hook" || key == "post_hook" || !value.is_string()) continue;
    const std::string text = value.get<std::string>();
    if (text.find("{{") == std::string::npos && text.find("{%") == std::string::npos) continue;
    auto tmpl = jinja::Template::Parse(text, fmt::format("dbt_project.yml ({})", key));
    if (!tmpl.ok()) throw LoadError{tmpl.message()};
    Node none;
    none.package_name = package;
    ContextCapture capture;
    ValueDict ctx = MakeContext(p_, none, {.parse = true}, &capture);
    auto r = p_.env->Render(**tmpl, ctx, package);
    if (!r.ok()) throw LoadError{r.message()};
    std::string out = *r;
    out.erase(0, out.find_first_not_of(" \t\r\n"));
    out.erase(out.find_last_not_of(" \t\r\n") + 1);
    value = NativeValue(out);  // "False" is false, as dbt's native rendering reads it
  }
}

void Loader::ParseModels() {
  for (auto& [id, n] : p_.nodes) {
    if (n.resource_type != NodeType::kModel && n.resource_type != NodeType::kSnapshot) continue;
    ResolveRelation(n);  // from project/schema configs, so `this` works while parsing
    ParseRender(n);
  }
  for (auto it = p_.nodes.begin(); it != p_.nodes.end();) {
    if (!it->second.enabled()) {
      it = p_.nodes.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [id, n] : p_.nodes) {
    if (n.resource_type == NodeType::kModel || n.resource_type == NodeType::kSeed ||
        n.resource_type == NodeType::kSnapshot)
      ResolveRelation(n);
  }
}

void Loader::ParseRender(Node& n) {
  ContextCapture capture;
  ValueDict ctx = MakeContext(p_, n, {.parse = true}, &capture);
  auto r = p_.env->Render(*n.tmpl, ctx, n.package_name);
  if (!r.ok()) throw LoadError{r.message()};
  MergeConfig(n.config, capture.config);
  RecordDependencies(n, capture);
}

void Loader::RecordDependencies(Node& n, const ContextCapture& capture) {
  for (const auto& [args, line] : capture.refs) {
    n.refs.push_back(args);
    ref_lines_[n.unique_id].push_back(line);
  }
  for (const auto& [args, line] : capture.sources) {
    n.sources.push_back(args);
    source_lines_[n.unique_id].push_back(line);
  }
}

void Loader::ResolveRelation(Node& n) {
  ValueDict globals = MakeContext(p_, n, {.parse = true}, &scratch_);
  Value node_value = NodeValue(n);
  auto call = [&](const char* macro, const char* key) {
    jinja::Arguments args;
    args.positional.push_back(n.config.contains(key) && n.config[key].is_string()
                                  ? Value(n.config[key].get<std::string>())
                                  : Value());
    args.positional.push_back(node_value);
    auto r = p_.env->CallMacro(macro, args, globals, n.package_name);
    if (!r.ok()) throw LoadError{r.message()};
    std::string s = r->Str();
    s.erase(0, s.find_first_not_of(" \t\r\n"));
    s.erase(s.find_last_not_of(" \t\r\n") + 1);
    return s;
  };
  n.schema = call("generate_schema_name", "schema");
  n.alias = call("generate_alias_name", "alias");
  n.database = p_.target.database;
  // A snapshot's legacy target_schema is used as it is, as dbt does.
  if (n.resource_type == NodeType::kSnapshot && n.config.contains("target_schema") &&
      n.config["target_schema"].is_string()) {
    n.schema = n.config["target_schema"].get<std::string>();
  }
}

void Loader::ResolveDependencies() {
  for (auto& [id, n] : p_.nodes) {
    for (size_t i = 0; i < n.refs.size(); ++i) {
      const auto& ref = n.refs[i];
      const Node* target =
          p_.FindModelOrSeed(ref.back(), ref.size() > 1 ? ref[0] : "", n.package_name);
      if (!target) {
        int line = i < ref_lines_[id].size() ? ref_lines_[id][i] : 0;
        std::string where =
            n.defined_at.empty() ? fmt::format("{}:{}", n.original_file_path, line) : n.defined_at;
        throw LoadError{
            fmt::format("{}: {} '{}' depends on ref('{}'), which is not a model or "
                        "seed of this project",
                        where, NodeTypeName(n.resource_type), n.name, n.refs[i].back())};
      }
      if (std::find(n.depends_on.begin(), n.depends_on.end(), target->unique_id) ==
          n.depends_on.end())
        n.depends_on.push_back(target->unique_id);
    }
    for (size_t i = 0; i < n.sources.size(); ++i) {
      const Node* s = p_.FindSource(n.sources[i][0], n.sources[i][1], n.package_name);
      if (!s) {
        int line = i < source_lines_[id].size() ? source_lines_[id][i] : 0;
        throw LoadError{fmt::format("{}:{}: source('{}', '{}') is not defined in any schema.yml",
                                    n.original_file_path, line, n.sources[i][0], n.sources[i][1])};
      }
      if (std::find(n.depends_on.begin(), n.depends_on.end(), s->unique_id) == n.depends_on.end())
        n.depends_on.push_back(s->unique_id);
    }
  }
}

}  // namespace pdv::transform::project_internal

namespace pdv::transform::project_internal {

void Loader::LoadProjectHooks() {
  // units_: the installed packages by folder, then the root project, dbt's order (it
  // sorts the root project's hooks last).
  for (const auto& u : units_) {
    std::string file = u.name == p_.name ? "dbt_project.yml" : Rel(u.dir / "dbt_project.yml", dir_);
    for (auto [key, into] :
         {std::pair{"on-run-start", &p_.on_run_start}, std::pair{"on-run-end", &p_.on_run_end}}) {
      YAML::Node hooks = Child(u.yml, key);
      if (!hooks) continue;
      std::vector<YAML::Node> entries;
      if (hooks.IsSequence()) {
        for (const auto& h : hooks) entries.push_back(h);
      } else {
        entries.push_back(hooks);
      }
      int index = 0;
      for (const auto& h : entries) {
        std::string where = fmt::format("{}:{}", file, h.Mark().line + 1);
        if (h.IsNull()) continue;
        if (!h.IsScalar()) {
          throw LoadError{
              fmt::format("{}: {} takes SQL statements (text), not a mapping", where, key)};
        }
        into->push_back(ProjectHook{u.name, h.Scalar(), where, index++});
      }
    }
  }
}

}  // namespace pdv::transform::project_internal
