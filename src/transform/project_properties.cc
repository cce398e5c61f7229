// Loader: schema (properties) YAML files: descriptions, configs, generic tests and unit
// tests.

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
namespace {

// A constraint entry (dbt's shape: type, expression, name, columns, to, to_columns), its
// type checked; `line` is its line in `file`.
nlohmann::json Constraint(const YAML::Node& c, const std::string& file) {
  static const std::set<std::string> kTypes = {"not_null",    "unique", "primary_key",
                                               "foreign_key", "check",  "custom"};
  int line = static_cast<int>(c.Mark().line) + 1;
  nlohmann::json j = YamlToJson(c);
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string() ||
      !kTypes.count(j["type"].get<std::string>())) {
    throw LoadError{fmt::format(
        "{}:{}: a constraint needs a type: not_null, unique, primary_key, foreign_key, check "
        "or custom",
        file, line)};
  }
  std::string type = j["type"].get<std::string>();
  if ((type == "check" || type == "custom") && !j.contains("expression")) {
    throw LoadError{fmt::format("{}:{}: a {} constraint needs an expression", file, line, type)};
  }
  if (type == "foreign_key" && !j.contains("expression") && !j.contains("to")) {
    throw LoadError{fmt::format(
        "{}:{}: a foreign_key constraint needs `to` (and `to_columns`) or an expression", file,
        line)};
  }
  return j;
}

nlohmann::json Constraints(const YAML::Node& list, const std::string& file) {
  nlohmann::json out = nlohmann::json::array();
  if (!list) return out;
  if (!list.IsSequence()) {
    throw LoadError{fmt::format("{}:{}: constraints must be a list", file, list.Mark().line + 1)};
  }
  for (const auto& c : list) out.push_back(Constraint(c, file));
  return out;
}

// A model column's properties as dbt's manifest keeps them.
nlohmann::json ColumnProperties(const YAML::Node& col, const std::string& file) {
  nlohmann::json j = {
      {"name", col["name"].as<std::string>()},
      {"description", col["description"] ? col["description"].as<std::string>() : ""},
      {"meta", col["meta"] ? YamlToJson(col["meta"]) : nlohmann::json::object()},
      {"data_type", col["data_type"] ? YamlToJson(col["data_type"]) : nullptr},
      {"constraints", Constraints(col["constraints"], file)},
      {"quote", col["quote"] ? YamlToJson(col["quote"]) : nullptr},
      {"tags", col["tags"] ? YamlToJson(col["tags"]) : nlohmann::json::array()}};
  for (const auto& c : j["constraints"]) {
    if (c.contains("columns")) {
      throw LoadError{fmt::format("{}:{}: a column's constraint takes no `columns`", file,
                                  col.Mark().line + 1)};
    }
  }
  return j;
}

nlohmann::json ModelConstraints(const YAML::Node& list, const std::string& file) {
  return Constraints(list, file);
}

}  // namespace

void Loader::CollectTests(const YAML::Node& tests, const std::string& attached,
                          const std::string& name, const std::string& column,
                          const std::string& file, const std::string& package) {
  if (!tests) return;
  if (!tests.IsSequence()) {
    throw LoadError{fmt::format("{}:{}: tests must be a list", file, tests.Mark().line + 1)};
  }
  for (const auto& t : tests) {
    TestSpec spec{.package = package,
                  .attached = attached,
                  .attached_name = name,
                  .column = column,
                  .file = file,
                  .line = t.Mark().line + 1};
    if (t.IsScalar()) {
      spec.test = t.Scalar();
      spec.kwargs = nlohmann::json::object();
    } else if (t.IsMap() && t.size() == 1) {
      spec.test = t.begin()->first.as<std::string>();
      nlohmann::json args = YamlToJson(t.begin()->second);
      if (!args.is_object()) args = nlohmann::json::object();
      if (args.contains("arguments") && args["arguments"].is_object()) {
        nlohmann::json inner = args["arguments"];
        args.erase("arguments");
        args.update(inner);
      }
      if (args.contains("config")) {
        spec.config = args["config"];
        args.erase("config");
      }
      for (const char* k : {"severity", "tags", "where", "name", "limit", "store_failures",
                            "warn_if", "error_if", "fail_calc"}) {
        if (args.contains(k)) {
          spec.config[k] = args[k];
          args.erase(k);
        }
      }
      spec.kwargs = args;
    } else {
      throw LoadError{fmt::format("{}:{}: a test is a name or a one-key mapping", file, spec.line)};
    }
    size_t dot = spec.test.find('.');
    if (dot != std::string::npos) {  // dbt_utils.expression_is_true, dbt.not_null
      spec.test_package = spec.test.substr(0, dot);
      spec.test = spec.test.substr(dot + 1);
    }
    pending_tests_.push_back(std::move(spec));
  }
}

void Loader::LoadSchemaFile(const fs::path& f, const std::string& package) {
  std::string file = Rel(f, dir_);
  YAML::Node y = LoadYaml(ReadFile(f), file);
  if (!y.IsMap()) return;
  for (const auto& src : y["sources"]) {
    if (!src["name"])
      throw LoadError{fmt::format("{}:{}: a source needs a name", file, src.Mark().line + 1)};
    std::string sname = src["name"].as<std::string>();
    std::string schema = src["schema"] ? src["schema"].as<std::string>() : sname;
    for (const auto& tbl : src["tables"]) {
      Node n;
      n.resource_type = NodeType::kSource;
      n.source_name = sname;
      n.name = tbl["name"].as<std::string>();
      n.identifier = tbl["identifier"] ? tbl["identifier"].as<std::string>() : n.name;
      n.schema = schema;
      n.alias = n.identifier;
      n.database = src["database"] ? src["database"].as<std::string>() : p_.target.database;
      n.package_name = package;
      n.unique_id = fmt::format("source.{}.{}.{}", package, sname, n.name);
      n.original_file_path = file;
      n.path = file;
      n.fqn = {package, sname, n.name};
      // freshness and loaded_at_field: the source's, a table's own winning (a table's
      // `freshness: null` turns it off).
      n.config = nlohmann::json::object();
      for (const YAML::Node* level : {&src, &tbl}) {
        if ((*level)["loaded_at_field"])
          n.config["loaded_at_field"] = (*level)["loaded_at_field"].as<std::string>();
        if ((*level)["freshness"]) {
          nlohmann::json f = YamlToJson((*level)["freshness"]);
          if (f.is_object()) {
            for (const char* key : {"warn_after", "error_after"}) {
              if (f.contains(key)) {
                auto seconds = ThresholdSeconds(f[key]);
                if (!seconds.ok()) {
                  throw LoadError{fmt::format(
                      "{}:{}: {}", file, (*level)["freshness"].Mark().line + 1, seconds.message())};
                }
              }
            }
          }
          n.config["freshness"] = f;
        }
      }
      if (tbl["description"]) n.description = tbl["description"].as<std::string>();
      for (const auto& col : tbl["columns"]) {
        std::string cname = col["name"].as<std::string>();
        n.columns[cname] = {
            {"name", cname},
            {"description", col["description"] ? col["description"].as<std::string>() : ""}};
        CollectTests(col["tests"] ? col["tests"] : col["data_tests"], n.unique_id,
                     sname + "_" + n.name, cname, file, package);
      }
      CollectTests(tbl["tests"] ? tbl["tests"] : tbl["data_tests"], n.unique_id,
                   sname + "_" + n.name, "", file, package);
      p_.nodes[n.unique_id] = std::move(n);
    }
  }
  for (const auto& ut : y["unit_tests"]) {
    if (!ut["name"] || !ut["model"]) {
      throw LoadError{
          fmt::format("{}:{}: a unit test needs a name and a model", file, ut.Mark().line + 1)};
    }
    pending_unit_tests_.push_back(
        UnitSpec{YamlToJson(ut), package, file, static_cast<int>(ut.Mark().line + 1)});
  }
  // dbt >= 1.9: a snapshot defined in YAML, of a relation.
  for (const auto& snap : y["snapshots"]) {
    if (!snap["name"] || !snap["relation"]) {
      throw LoadError{
          fmt::format("{}:{}: a snapshot needs a name and a relation", file, snap.Mark().line + 1)};
    }
    std::string name = snap["name"].as<std::string>();
    if (p_.nodes.count("snapshot." + package + "." + name)) continue;  // the .sql one
    std::string code =
        fmt::format("select * from {{{{ {} }}}}", snap["relation"].as<std::string>());
    auto tmpl = jinja::Template::Parse(code, fmt::format("{}:{}", file, snap.Mark().line + 1));
    if (!tmpl.ok()) throw LoadError{tmpl.message()};
    const PackageDir* u = FindUnit(package);
    AddSnapshot(name, file, file, code, *tmpl, *u);
    if (snap["config"])
      MergeConfig(p_.nodes["snapshot." + package + "." + name].config, YamlToJson(snap["config"]));
  }
  for (const char* kind : {"models", "seeds", "snapshots"}) {
    for (const auto& m : y[kind]) {
      if (!m["name"])
        throw LoadError{fmt::format("{}:{}: an entry needs a name", file, m.Mark().line + 1)};
      std::string name = m["name"].as<std::string>();
      std::string kind_name = kind;
      std::string id = fmt::format("{}.{}.{}",
                                   kind_name == "models"  ? "model"
                                   : kind_name == "seeds" ? "seed"
                                                          : "snapshot",
                                   package, name);
      if (kind_name == "models" && m["versions"]) {
        ApplyVersions(m, file, package);
        continue;
      }
      auto it = p_.nodes.find(id);
      if (it == p_.nodes.end()) {
        if (options_.warn) {
          options_.warn(fmt::format("{}:{}: {} '{}' is described but has no file", file,
                                    m.Mark().line + 1, kind, name));
        }
        continue;
      }
      Node& n = it->second;
      n.properties_at = fmt::format("{}:{}", file, m.Mark().line + 1);
      if (m["description"]) n.description = m["description"].as<std::string>();
      if (m["config"]) {
        nlohmann::json config = YamlToJson(m["config"]);
        RenderConfigValues(config, package);
        if (Status s = NormalizeBoolConfigs(
                config, fmt::format("{}:{}", file, m["config"].Mark().line + 1));
            !s.ok()) {
          throw LoadError{s.message()};
        }
        MergeConfig(n.config, config);
      }
      for (const auto& col : m["columns"]) {
        std::string cname = col["name"].as<std::string>();
        n.columns[cname] = ColumnProperties(col, file);
        CollectTests(col["tests"] ? col["tests"] : col["data_tests"], id, name, cname, file,
                     package);
      }
      if (m["constraints"]) n.constraints = ModelConstraints(m["constraints"], file);
      // A foreign key's `to: ref(...)` is a dependency, as dbt records it: the referenced
      // table is built first.
      std::vector<const nlohmann::json*> all;
      for (const auto& c : n.constraints) all.push_back(&c);
      for (const auto& [cname, col] : n.columns.items()) {
        if (col.contains("constraints"))
          for (const auto& c : col["constraints"]) all.push_back(&c);
      }
      static const std::regex kToRef(
          R"(^\s*ref\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]+)['"]\s*)?\)\s*$)");
      for (const nlohmann::json* c : all) {
        std::smatch match;
        std::string to =
            c->contains("to") && (*c)["to"].is_string() ? (*c)["to"].get<std::string>() : "";
        if (!std::regex_match(to, match, kToRef)) continue;
        std::vector<std::string> ref = {match[1].str()};
        if (match[2].matched) ref.push_back(match[2].str());
        n.refs.push_back(ref);
        ref_lines_[id].push_back(m.Mark().line + 1);
      }
      CollectTests(m["tests"] ? m["tests"] : m["data_tests"], id, name, "", file, package);
    }
  }
}

void Loader::AddGenericTest(TestSpec& spec) {
  // Qualified: that package's; otherwise the search order from the schema file's
  // package, then any installed package (dbt accepts a package's test unqualified when
  // no other defines it).
  std::string macro = "test_" + spec.test;
  std::optional<std::string> macro_package;
  if (!spec.test_package.empty()) {
    if (p_.env->HasMacro(spec.test_package, macro)) macro_package = spec.test_package;
  } else {
    for (const std::string& pkg : {spec.package, p_.name}) {
      if (!macro_package && p_.env->HasMacro(pkg, macro)) macro_package = pkg;
    }
    if (!macro_package && p_.env->HasMacro(jinja::Environment::kGlobalPackage, macro))
      macro_package = jinja::Environment::kGlobalPackage;
    for (const auto& pkg : p_.packages) {
      if (!macro_package && p_.env->HasMacro(pkg.name, macro)) macro_package = pkg.name;
    }
  }
  if (!macro_package) {
    std::string qualified =
        spec.test_package.empty() ? spec.test : spec.test_package + "." + spec.test;
    throw LoadError{
        fmt::format("{}:{}: unknown data test '{}' (no built-in, package or "
                    "{{% test {}(...) %}} definition)",
                    spec.file, spec.line, qualified, spec.test)};
  }
  auto node_it = p_.nodes.find(spec.attached);
  if (node_it == p_.nodes.end()) return;  // attached to a disabled node
  Node n;
  n.resource_type = NodeType::kTest;
  std::string name =
      spec.test + "_" + spec.attached_name + (spec.column.empty() ? "" : "_" + spec.column);
  for (const auto& [k, v] : spec.kwargs.items()) {
    if (v.is_array()) {
      for (const auto& e : v) name += "__" + (e.is_string() ? e.get<std::string>() : e.dump());
    } else if (v.is_string()) {
      std::string s = v.get<std::string>();
      std::string clean;
      for (char c : s) clean += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      name += "__" + clean;
    } else {
      name += "__" + v.dump();
    }
  }
  if (spec.config.contains("name") && spec.config["name"].is_string()) {
    name = spec.config["name"].get<std::string>();
    spec.config.erase("name");
  }
  if (name.size() > 63) name = name.substr(0, 40) + "_" + ShortHash(name);
  n.name = name;
  n.package_name = spec.package;
  n.unique_id =
      fmt::format("test.{}.{}.{}", spec.package, name,
                  ShortHash(spec.attached + spec.column + spec.test + spec.kwargs.dump()));
  n.original_file_path = spec.file;
  n.path = spec.file;
  n.defined_at = fmt::format("{}:{}", spec.file, spec.line);
  n.fqn = {spec.package, name};
  n.test_macro = macro;
  n.test_macro_package = *macro_package;
  n.attached_node = spec.attached;
  n.column_name = spec.column;
  n.schema = p_.target.schema;
  n.alias = name;
  n.config = nlohmann::json::object();
  n.config["materialized"] = "test";
  n.config["severity"] = "ERROR";
  if (const PackageDir* u = FindUnit(spec.package)) {
    // dbt_project.yml's `data_tests:` tree, at the schema file's folders under its
    // resource folder (store_failures, severity, +schema ...).
    std::vector<std::string> path;
    fs::path rel = fs::path(Rel(dir_ / spec.file, u->dir)).parent_path();
    for (auto it = rel.begin(); it != rel.end(); ++it) {
      if (it != rel.begin()) path.push_back(it->string());
    }
    path.push_back(name);
    MergeConfig(n.config, ResourceConfig(*u, u->yml["data_tests"] ? "data_tests" : "tests", path));
  }
  n.depends_on.push_back(spec.attached);
  for (const auto& [k, v] : spec.kwargs.items()) {
    n.test_kwargs.Set(k, JsonToValue(v));
    if (v.is_string()) {
      std::string s = v.get<std::string>();
      if (s.starts_with("ref(") || s.starts_with("source(")) {
        auto tmpl = jinja::Template::Parse("{{ " + s + " }}", n.defined_at);
        if (!tmpl.ok()) throw LoadError{tmpl.message()};
        ContextCapture capture;
        ValueDict ctx = MakeContext(p_, n, {.parse = true}, &capture);
        auto r = p_.env->Render(**tmpl, ctx, n.package_name);
        if (!r.ok()) throw LoadError{r.message()};
        RecordDependencies(n, capture);
        for (auto& line : ref_lines_[n.unique_id]) line = spec.line;
        for (auto& line : source_lines_[n.unique_id]) line = spec.line;
      }
    }
  }
  ParseTestMacro(n, node_it->second);
  MergeConfig(n.config, spec.config);
  p_.nodes[n.unique_id] = std::move(n);
}

void Loader::ParseTestMacro(Node& n, const Node& attached) {
  ContextCapture capture;
  ValueDict ctx = MakeContext(p_, n, {.parse = true}, &capture);
  jinja::Arguments args;
  args.named.emplace_back("model",
                          RelationValue(attached.database, attached.schema, attached.alias));
  if (!n.column_name.empty()) args.named.emplace_back("column_name", Value(n.column_name));
  for (const auto& [k, v] : n.test_kwargs.items) {
    Value value = v;
    if (v.is_string() &&
        (v.as_string().starts_with("ref(") || v.as_string().starts_with("source("))) {
      auto r = p_.env->Evaluate(v.as_string(), n.defined_at, ctx, n.package_name);
      if (!r.ok()) throw LoadError{r.message()};
      value = *r;
    }
    args.named.emplace_back(k, value);
  }
  auto r = p_.env->CallMacro(n.test_macro, args, ctx, n.package_name, n.test_macro_package);
  if (!r.ok()) throw LoadError{fmt::format("{} (test defined at {})", r.message(), n.defined_at)};
  MergeConfig(n.config, capture.config);
}

void Loader::LoadFixture(nlohmann::json& entry, const PackageDir& u, const std::string& where,
                         const std::string& test) {
  if (!entry.is_object() || !entry.contains("fixture")) return;
  std::string format = entry.value("format", "dict");
  std::string name = entry["fixture"].is_string() ? entry["fixture"].get<std::string>() : "";
  if (format != "csv" && format != "sql") {
    throw LoadError{fmt::format("{}: unit test '{}': fixture '{}' needs format: csv or sql", where,
                                test, name)};
  }
  if (entry.contains("rows")) {
    throw LoadError{
        fmt::format("{}: unit test '{}': give rows or a fixture, not both", where, test)};
  }
  // dbt's fixture files: <test-path>/fixtures/**/<name>.csv or .sql.
  std::vector<fs::path> found;
  for (const auto& dir : PathList(u.yml, "test-paths", "tests")) {
    for (const auto& f : FilesUnder(u.dir / dir / "fixtures", "." + format)) {
      if (f.stem().string() == name) found.push_back(f);
    }
  }
  if (found.empty()) {
    throw LoadError{fmt::format(
        "{}: unit test '{}': no fixture file '{}.{}' under the test paths' fixtures/ folder", where,
        test, name, format)};
  }
  if (found.size() > 1) {
    throw LoadError{fmt::format("{}: unit test '{}': fixture '{}' is both {} and {}", where, test,
                                name, Rel(found[0], dir_), Rel(found[1], dir_))};
  }
  entry["rows"] = ReadFile(found[0]);
  entry["fixture_path"] = Rel(found[0], dir_);
}

void Loader::AddUnitTest(const UnitSpec& spec) {
  const nlohmann::json& ut = spec.entry;
  std::string where = fmt::format("{}:{}", spec.file, spec.line);
  std::string model = ut["model"].is_string() ? ut["model"].get<std::string>() : "";
  const Node* target = p_.FindModelOrSeed(model, "", spec.package);
  if (!target || target->resource_type != NodeType::kModel) {
    throw LoadError{
        fmt::format("{}: unit test '{}' is of model '{}', which is not a model of "
                    "this project",
                    where, ut.value("name", ""), model)};
  }
  Node n;
  n.resource_type = NodeType::kUnitTest;
  n.name = ut["name"].get<std::string>();
  n.package_name = spec.package;
  n.unique_id = fmt::format("unit_test.{}.{}.{}", spec.package, target->name, n.name);
  n.original_file_path = spec.file;
  n.path = spec.file;
  n.defined_at = where;
  n.fqn = {spec.package, target->name, n.name};
  n.attached_node = target->unique_id;
  n.unit_test = ut;
  n.description = ut.value("description", "");
  n.schema = target->schema;
  n.alias = n.name;
  const PackageDir* unit = FindUnit(spec.package);
  // dbt_project.yml `unit_tests:` configs, then the test's own (tags, enabled, meta), its
  // Jinja rendered as a model's are.
  n.config =
      unit ? ResourceConfig(*unit, "unit_tests", {target->name, n.name}) : nlohmann::json::object();
  n.config["materialized"] = "unit_test";
  if (ut.contains("config") && ut["config"].is_object()) {
    nlohmann::json config = ut["config"];
    RenderConfigValues(config, spec.package);
    if (Status s = NormalizeBoolConfigs(config, where); !s.ok()) throw LoadError{s.message()};
    MergeConfig(n.config, config);
  } else if (ut.contains("config") && !ut["config"].is_null()) {
    throw LoadError{fmt::format("{}: unit test '{}': config must be a mapping", where, n.name)};
  }
  if (!ut.contains("expect") || !ut["expect"].is_object()) {
    throw LoadError{fmt::format("{}: unit test '{}' needs expect: rows", where, n.name)};
  }
  if (unit) {
    if (n.unit_test.contains("given") && n.unit_test["given"].is_array()) {
      for (auto& entry : n.unit_test["given"]) LoadFixture(entry, *unit, where, n.name);
    }
    LoadFixture(n.unit_test["expect"], *unit, where, n.name);
  }
  for (const auto& given : ut.value("given", nlohmann::json::array())) {
    std::string input = given.value("input", "");
    if (input.starts_with("ref(") || input.starts_with("source(")) {
      ContextCapture capture;
      ValueDict ctx = MakeContext(p_, n, {.parse = true}, &capture);
      auto r = p_.env->Evaluate(input, where, ctx, n.package_name);
      if (!r.ok()) throw LoadError{r.message()};
      RecordDependencies(n, capture);
      for (auto& line : ref_lines_[n.unique_id]) line = spec.line;
      for (auto& line : source_lines_[n.unique_id]) line = spec.line;
    } else if (input != "this") {
      throw LoadError{
          fmt::format("{}: unit test '{}': input '{}' is not ref(...), source(...) "
                      "or this",
                      where, n.name, input)};
    }
  }
  if (n.enabled()) p_.nodes[n.unique_id] = std::move(n);
}

}  // namespace pdv::transform::project_internal
