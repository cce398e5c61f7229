#include "transform/context.h"

#include <fmt/format.h>

#include <cstdlib>
#include <iostream>

namespace pdv::transform {

using jinja::Arguments;
using jinja::Function;
using jinja::TemplateError;
using jinja::Value;
using jinja::ValueDict;
using jinja::ValueList;

void MergeConfig(nlohmann::json& into, const nlohmann::json& add) {
  for (const auto& [raw_key, value] : add.items()) {
    std::string key = raw_key;
    if (!key.empty() && key[0] == '+') key.erase(0, 1);
    if (key == "pre-hook") key = "pre_hook";
    if (key == "post-hook") key = "post_hook";
    if (key == "tags" || key == "pre_hook" || key == "post_hook") {
      nlohmann::json& list = into[key];
      if (!list.is_array()) list = nlohmann::json::array();
      if (value.is_array()) {
        for (const auto& v : value) list.push_back(v);
      } else if (!value.is_null()) {
        list.push_back(value);
      }
    } else {
      into[key] = value;
    }
  }
}

namespace {

std::vector<std::string> StringArgs(const Arguments& a, const char* fn) {
  std::vector<std::string> out;
  for (const auto& v : a.positional) {
    if (!v.is_string()) throw TemplateError(a.line, fmt::format("{}() takes string arguments", fn));
    out.push_back(v.as_string());
  }
  if (out.empty()) throw TemplateError(a.line, fmt::format("{}() needs a name", fn));
  return out;
}

Value TargetValue(const Target& t) {
  ValueDict d;
  d.Set("name", Value(t.name));
  d.Set("type", Value(t.type));
  d.Set("schema", Value(t.schema));
  d.Set("database", Value(t.database));
  d.Set("dbname", Value(t.database));
  d.Set("host", Value(t.host));
  d.Set("user", Value(t.user));
  d.Set("port", Value(static_cast<int64_t>(t.port)));
  d.Set("threads", Value(static_cast<int64_t>(t.threads)));
  return Value(std::move(d));
}

}  // namespace

Value NodeValue(const Node& node) {
  ValueDict d;
  d.Set("name", Value(node.name));
  d.Set("unique_id", Value(node.unique_id));
  d.Set("resource_type", Value(node.resource_type));
  d.Set("schema", Value(node.schema));
  d.Set("alias", Value(node.alias));
  d.Set("fqn", JsonToValue(node.fqn));
  d.Set("config", JsonToValue(node.config));
  return Value(std::move(d));
}

ValueDict MakeContext(const Project& project, const Node& node, const ContextOptions& options,
                      ContextCapture* capture) {
  ValueDict g;
  const Project* p = &project;
  bool parse = options.parse;

  g.Set("ref", Value(Function([p, capture, parse](const Arguments& a) -> Value {
          std::vector<std::string> args = StringArgs(a, "ref");
          capture->refs.emplace_back(args, a.line);
          const Node* target = p->FindModelOrSeed(args.back());
          if (!target || !target->enabled()) {
            if (parse) return RelationValue("", "", args.back());
            throw TemplateError(
                a.line, fmt::format("ref('{}') does not name a model or seed", args.back()));
          }
          if (target->materialized() == "ephemeral" && target->resource_type == "model") {
            capture->ephemerals.push_back(target->unique_id);
            ValueDict d;
            d.text = "__dbt__cte__" + target->name;
            d.Set("name", Value(target->name));
            d.Set("identifier", Value("__dbt__cte__" + target->name));
            return Value(std::move(d));
          }
          return RelationValue(target->database, target->schema, target->alias);
        })));
  g.Set("source", Value(Function([p, capture, parse](const Arguments& a) -> Value {
          std::vector<std::string> args = StringArgs(a, "source");
          if (args.size() != 2)
            throw TemplateError(a.line, "source() takes (source_name, table_name)");
          capture->sources.emplace_back(args, a.line);
          const Node* s = p->FindSource(args[0], args[1]);
          if (!s) {
            if (parse) return RelationValue("", args[0], args[1]);
            throw TemplateError(a.line, fmt::format("source('{}', '{}') is not defined in a "
                                                    "schema.yml",
                                                    args[0], args[1]));
          }
          return RelationValue(s->database, s->schema, s->identifier);
        })));
  g.Set("config", Value(Function([capture](const Arguments& a) -> Value {
          nlohmann::json add = nlohmann::json::object();
          for (const auto& [k, v] : a.named) add[k] = ValueToJson(v);
          if (!a.positional.empty() && a.positional[0].is_dict()) {
            for (const auto& [k, v] : a.positional[0].dict().items) add[k] = ValueToJson(v);
          }
          MergeConfig(capture->config, add);
          return Value("");
        })));
  bool incremental = !parse && options.incremental;
  g.Set("is_incremental",
        Value(Function([incremental](const Arguments&) { return Value(incremental); })));
  g.Set("this", RelationValue(node.database, node.schema, node.alias));
  g.Set("execute", Value(!parse));
  auto run_query = options.run_query;
  g.Set("run_query", Value(Function([run_query, parse](const Arguments& a) -> Value {
          // Parsing never touches the database; dbt returns None there too.
          if (parse || !run_query) return Value();
          const Value* sql = a.Get(0, "sql");
          if (!sql) throw TemplateError(a.line, "run_query() needs a SQL string");
          auto r = run_query(sql->Str());
          if (!r.ok()) throw TemplateError(a.line, "run_query: " + r.message());
          return *r;
        })));
  g.Set("var", Value(Function([p](const Arguments& a) -> Value {
          const Value* name = a.Get(0, "name");
          if (!name || !name->is_string()) throw TemplateError(a.line, "var() needs a name");
          if (p->vars.contains(name->as_string())) return JsonToValue(p->vars[name->as_string()]);
          if (const Value* d = a.Get(1, "default")) return *d;
          throw TemplateError(a.line, fmt::format("required var '{}' not found (set it under "
                                                  "vars: in dbt_project.yml or with --vars)",
                                                  name->as_string()));
        })));
  bool all_env = options.all_env;
  const std::set<std::string>* declared = &project.declared_env;
  g.Set("env_var", Value(Function([all_env, declared](const Arguments& a) -> Value {
          const Value* name = a.Get(0, "var");
          if (!name || !name->is_string()) throw TemplateError(a.line, "env_var() needs a name");
          const std::string& n = name->as_string();
          bool visible = all_env || declared->contains(n) ||
                         (n.starts_with("DBT_ENV_") && !n.starts_with("DBT_ENV_SECRET_"));
          if (!visible) {
            throw TemplateError(a.line,
                                fmt::format("env_var('{}'): outside profiles.yml only DBT_ENV_* "
                                            "variables (DBT_ENV_SECRET_* not even those) and those "
                                            "declared with --env-var are visible",
                                            n));
          }
          if (const char* v = std::getenv(name->as_string().c_str())) return Value(std::string(v));
          if (const Value* d = a.Get(1, "default")) return *d;
          throw TemplateError(
              a.line, fmt::format("env var required but not provided: '{}'", name->as_string()));
        })));
  g.Set("target", TargetValue(project.target));
  g.Set("project_name", Value(project.name));
  g.Set("schema", Value(node.schema));
  g.Set("model", NodeValue(node));
  g.Set("log", Value(Function([](const Arguments& a) -> Value {
          const Value* info = a.Get(1, "info");
          if (info && info->Truthy() && !a.positional.empty()) {
            std::cerr << a.positional[0].Str() << "\n";
          }
          return Value("");
        })));
  ValueDict exceptions;
  exceptions.Set("raise_compiler_error", Value(Function([](const Arguments& a) -> Value {
                   throw TemplateError(
                       a.line, a.positional.empty() ? "compiler error" : a.positional[0].Str());
                 })));
  exceptions.Set("warn", Value(Function([](const Arguments& a) -> Value {
                   if (!a.positional.empty())
                     std::cerr << "warning: " << a.positional[0].Str() << "\n";
                   return Value("");
                 })));
  g.Set("exceptions", Value(std::move(exceptions)));
  ValueDict adapter;
  adapter.Set("quote", Value(Function([](const Arguments& a) -> Value {
                if (a.positional.empty())
                  throw TemplateError(a.line, "adapter.quote() needs a name");
                return Value(QuoteIdentifier(a.positional[0].Str()));
              })));
  g.Set("adapter", Value(std::move(adapter)));
  return g;
}

}  // namespace pdv::transform
