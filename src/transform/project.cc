// LoadProject: reads a dbt project folder into nodes with resolved configs and relations.

#include "transform/project.h"

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
#include "transform/model_versions.h"
#include "transform/packages.h"
#include "transform/project_loader.h"
namespace pdv::transform {

namespace fs = std::filesystem;
using jinja::Value;
using jinja::ValueDict;
using jinja::ValueList;

std::vector<std::string> Node::tags() const {
  std::vector<std::string> out;
  if (config.contains("tags")) {
    for (const auto& t : config["tags"]) {
      if (t.is_string() && std::find(out.begin(), out.end(), t.get<std::string>()) == out.end())
        out.push_back(t.get<std::string>());
    }
  }
  return out;
}

std::string QuoteIdentifier(const std::string& name) {
  std::string out = "\"";
  for (char c : name) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string Node::RelationName() const {
  return QuoteIdentifier(schema) + "." + QuoteIdentifier(alias);
}

Value RelationValue(const std::string& database, const std::string& schema,
                    const std::string& identifier, const std::string& type) {
  return RelationValue(database, schema, identifier, type, {true, true, true});
}

Value RelationValue(const std::string& database, const std::string& schema,
                    const std::string& identifier, const std::string& type,
                    const RelationParts& shown) {
  ValueDict d;
  std::string text;
  auto add = [&](bool show, const std::string& part) {
    if (!show || part.empty()) return;
    text += (text.empty() ? "" : ".") + QuoteIdentifier(part);
  };
  // The database is never shown: dbt-postgres leaves it out (one database per connection).
  add(shown.schema, schema);
  add(shown.identifier, identifier);
  d.text = text;
  d.Set("database", Value(database));
  d.Set("schema", Value(schema));
  d.Set("name", Value(identifier));
  d.Set("identifier", Value(identifier));
  d.Set("type", type.empty() ? Value() : Value(type));
  d.Set("is_table", Value(type == "table"));
  d.Set("is_view", Value(type == "view"));
  d.Set("is_cte", Value(false));
  // What packages test to tell a relation from a string (dbt_utils._is_relation).
  ValueDict metadata;
  metadata.Set("type", Value("PostgresRelation"));
  d.Set("metadata", Value(std::move(metadata)));
  d.Set("render", Value(jinja::Function([text](const jinja::Arguments&) { return Value(text); })));
  // information_schema('columns'): the catalog view the relation's database answers in.
  d.Set("information_schema", Value(jinja::Function([](const jinja::Arguments& a) {
          std::string view = a.positional.empty() ? "" : a.positional[0].Str();
          return Value(view.empty() ? std::string("information_schema")
                                    : "information_schema." + QuoteIdentifier(view));
        })));
  d.Set("quote",
        Value(jinja::Function([database, schema, identifier, type, shown](const jinja::Arguments&) {
          return RelationValue(database, schema, identifier, type, shown);
        })));
  // include(database=, schema=, identifier=): which parts the name shows.
  d.Set(
      "include",
      Value(jinja::Function([database, schema, identifier, type, shown](const jinja::Arguments& a) {
        RelationParts parts = shown;
        auto flag = [&](const char* key, bool& into) {
          for (const auto& [k, v] : a.named) {
            if (k == key) into = v.Truthy();
          }
        };
        flag("database", parts.database);
        flag("schema", parts.schema);
        flag("identifier", parts.identifier);
        return RelationValue(database, schema, identifier, type, parts);
      })));
  // incorporate(type=, path={schema:, identifier:}) and replace_path(...): a changed copy.
  auto changed = [database, schema, identifier, type, shown](const jinja::Arguments& a) {
    std::string db = database, sch = schema, id = identifier, ty = type;
    auto take = [&](const std::string& k, const Value& v) {
      if (k == "database") db = v.Str();
      if (k == "schema") sch = v.Str();
      if (k == "identifier") id = v.Str();
      if (k == "type") ty = v.Str();
    };
    for (const auto& [k, v] : a.named) {
      if (k == "path" && v.is_dict()) {
        for (const auto& [pk, pv] : v.dict().items) take(pk, pv);
      } else {
        take(k, v);
      }
    }
    return RelationValue(db, sch, id, ty, shown);
  };
  d.Set("incorporate", Value(jinja::Function(changed)));
  d.Set("replace_path", Value(jinja::Function(changed)));
  return Value(std::move(d));
}

Value JsonToValue(const nlohmann::json& j) {
  if (j.is_null()) return Value();
  if (j.is_boolean()) return Value(j.get<bool>());
  if (j.is_number_integer()) return Value(j.get<int64_t>());
  if (j.is_number()) return Value(j.get<double>());
  if (j.is_string()) return Value(j.get<std::string>());
  if (j.is_array()) {
    ValueList l;
    for (const auto& e : j) l.push_back(JsonToValue(e));
    return Value(std::move(l));
  }
  ValueDict d;
  for (const auto& [k, v] : j.items()) d.Set(k, JsonToValue(v));
  return Value(std::move(d));
}

nlohmann::json ValueToJson(const Value& v) { return jinja::ToJson(v); }

const Node* Project::FindModelOrSeed(const std::string& node_name, const std::string& package,
                                     const std::string& from_package) const {
  auto in = [&](const std::string& pkg) -> const Node* {
    for (const char* type : {"model", "seed", "snapshot"}) {
      auto it = nodes.find(fmt::format("{}.{}.{}", type, pkg, node_name));
      if (it != nodes.end()) return &it->second;
    }
    return FindVersionedModel(nodes, pkg, node_name);  // a versioned model's latest
  };
  if (!package.empty()) return in(package);
  return InSearchOrder(from_package, in);
}

const Node* Project::FindSource(const std::string& source, const std::string& table,
                                const std::string& from_package) const {
  auto in = [&](const std::string& pkg) -> const Node* {
    auto it = nodes.find(fmt::format("source.{}.{}.{}", pkg, source, table));
    return it == nodes.end() ? nullptr : &it->second;
  };
  return InSearchOrder(from_package, in);
}

const Node* Project::InSearchOrder(const std::string& from_package,
                                   const std::function<const Node*(const std::string&)>& in) const {
  if (!from_package.empty() && from_package != name) {
    if (const Node* n = in(from_package)) return n;
  }
  if (const Node* n = in(name)) return n;
  for (const auto& p : packages) {
    if (const Node* n = in(p.name)) return n;
  }
  return nullptr;
}

const nlohmann::json& Project::VarsFor(const std::string& package) const {
  if (package.empty() || package == name) return vars;
  auto it = package_vars.find(package);
  return it == package_vars.end() ? vars : it->second;
}

bool Project::IsPackage(const std::string& package) const {
  return std::any_of(packages.begin(), packages.end(),
                     [&](const Package& p) { return p.name == package; });
}

using project_internal::Loader;
using project_internal::LoadError;

Result<Project> LoadProject(const LoadOptions& options) {
  // Read once, here: the same values are scrubbed from the errors below and, through
  // Project::secrets, from everything the runner prints and writes later.
  SecretMask secrets = SecretMask::FromEnvironment(environ);
  try {
    return Loader(options, secrets).Load();
  } catch (const LoadError& e) {
    return Status::Error(secrets.Scrub(e.message));
  } catch (const YAML::Exception& e) {
    return Status::Error(
        secrets.Scrub(fmt::format("invalid project YAML at line {}: {}", e.mark.line + 1, e.msg)));
  } catch (const fs::filesystem_error& e) {
    return Status::Error(secrets.Scrub(e.what()));
  }
}

}  // namespace pdv::transform
