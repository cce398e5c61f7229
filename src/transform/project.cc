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
#include "transform/packages.h"

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
    return nullptr;
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

namespace {

// A load error carrying its message; thrown inside the loader only.
struct LoadError {
  std::string message;
};

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw LoadError{fmt::format("{}: cannot read", p.string())};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::json YamlToJson(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (n.Tag() == "!") return s;  // quoted
      if (s == "true" || s == "True" || s == "TRUE") return true;
      if (s == "false" || s == "False" || s == "FALSE") return false;
      if (s == "null" || s == "~" || s == "None") return nullptr;
      static const std::regex kInt("[-+]?[0-9]+");
      static const std::regex kFloat("[-+]?([0-9]+\\.[0-9]*|\\.[0-9]+)([eE][-+]?[0-9]+)?");
      if (std::regex_match(s, kInt)) {
        try {
          return std::stoll(s);
        } catch (const std::exception&) {
          return s;
        }
      }
      if (std::regex_match(s, kFloat)) return std::stod(s);
      return s;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& e : n) a.push_back(YamlToJson(e));
      return a;
    }
    case YAML::NodeType::Map: {
      nlohmann::json o = nlohmann::json::object();
      for (const auto& kv : n) o[kv.first.as<std::string>()] = YamlToJson(kv.second);
      return o;
    }
  }
  return nullptr;
}

YAML::Node LoadYaml(const std::string& text, const std::string& file) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw LoadError{fmt::format("{}:{}: invalid YAML: {}", file, e.mark.line + 1, e.msg)};
  }
}

// Lexical, so a package installed as a symlink keeps its dbt_packages/<name>/ path.
std::string Rel(const fs::path& p, const fs::path& base) {
  return p.lexically_normal().lexically_relative(base).generic_string();
}

std::vector<std::string> PathList(const YAML::Node& project, const char* key,
                                  const char* fallback) {
  std::vector<std::string> out;
  if (project[key]) {
    for (const auto& e : project[key]) out.push_back(e.as<std::string>());
  } else {
    out.push_back(fallback);
  }
  return out;
}

std::vector<fs::path> FilesUnder(const fs::path& dir, const std::string& ext) {
  std::vector<fs::path> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ext) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// n[key], or an undefined node when n is not a map (never throws).
YAML::Node Child(const YAML::Node& n, const std::string& key) {
  if (!n || !n.IsMap() || !n[key]) return YAML::Node(YAML::NodeType::Undefined);
  return n[key];
}

// dbt's config keys: anything else under `models:` that is not a `+key` is a folder name.
bool IsConfigKey(const std::string& key) {
  static const std::set<std::string> kKeys = {
      "materialized",   "schema",        "alias",
      "tags",           "unique_key",    "incremental_strategy",
      "enabled",        "pre-hook",      "post-hook",
      "pre_hook",       "post_hook",     "on_schema_change",
      "full_refresh",   "database",      "persist_docs",
      "severity",       "meta",          "docs",
      "grants",         "indexes",       "contract",
      "column_types",   "quote_columns", "delimiter",
      "store_failures", "warn_if",       "error_if",
      "where",          "limit",         "bind",
      "sql_header"};
  return kKeys.count(key) > 0;
}

// The configs that dbt_project.yml's `<resource>:` tree gives a node at `fqn` (project
// name, folders, name), outermost first.
nlohmann::json TreeConfig(const YAML::Node& tree, const std::vector<std::string>& fqn) {
  nlohmann::json config = nlohmann::json::object();
  YAML::Node level = tree;
  for (size_t depth = 0; level && level.IsMap(); ++depth) {
    nlohmann::json here = nlohmann::json::object();
    for (const auto& kv : level) {
      std::string key = kv.first.as<std::string>();
      if (key.starts_with("+") || (IsConfigKey(key) && !kv.second.IsMap())) {
        here[key] = YamlToJson(kv.second);
      }
    }
    MergeConfig(config, here);
    if (depth >= fqn.size()) break;
    level.reset(Child(level, fqn[depth]));  // reset rebinds; operator= would overwrite the tree
  }
  return config;
}

std::string ShortHash(const std::string& text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), md, &len, EVP_md5(), nullptr);
  std::string hex;
  for (unsigned int i = 0; i < 5; ++i) hex += fmt::format("{:02x}", md[i]);
  return hex;
}

class Loader {
 public:
  Loader(const LoadOptions& options, const SecretMask& secrets) : options_(options) {
    p_.secrets = secrets;
  }

  Project Load() {
    dir_ =
        fs::absolute(options_.project_dir.empty() ? "." : options_.project_dir).lexically_normal();
    fs::path project_file = dir_ / "dbt_project.yml";
    if (!fs::exists(project_file)) {
      throw LoadError{
          fmt::format("{}: no dbt_project.yml (not a dbt project folder)", dir_.string())};
    }
    YAML::Node yml = LoadYaml(ReadFile(project_file), "dbt_project.yml");
    if (!yml.IsMap() || !yml["name"]) throw LoadError{"dbt_project.yml: 'name' is required"};
    root_yml_ = yml;
    auto id = RandomSecretHex(16);
    std::string hex = id.ok() ? *id : std::string(32, '0');
    p_.invocation_id = fmt::format("{}-{}-{}-{}-{}", hex.substr(0, 8), hex.substr(8, 4),
                                   hex.substr(12, 4), hex.substr(16, 4), hex.substr(20));
    auto started = std::chrono::system_clock::now();
    p_.run_started_at = fmt::format("{:%Y-%m-%d %H:%M:%S}+00:00",
                                    std::chrono::floor<std::chrono::microseconds>(started));
    p_.run_started_at_value = UtcDatetime(started);
    p_.name = yml["name"].as<std::string>();
    p_.profile = yml["profile"] ? yml["profile"].as<std::string>() : p_.name;
    p_.dir = dir_.string();
    p_.target_path =
        (dir_ / (yml["target-path"] ? yml["target-path"].as<std::string>() : "target")).string();
    LoadVars(yml);
    LoadDispatch(yml);
    LoadTarget();
    p_.env = std::make_shared<jinja::Environment>(p_.name);
    AddMacroText(kBuiltinMacros, "<builtin macros>", jinja::Environment::kGlobalPackage);
    AddMacroText(kGlobalProjectMacros, "<dbt global project>", jinja::Environment::kGlobalPackage);
    units_ = InstalledPackages(yml);
    for (const auto& u : units_) LoadPackageVars(u);
    units_.push_back(PackageDir{p_.name, dir_, yml});
    for (const auto& u : units_) LoadMacros(u);
    for (const auto& u : units_) LoadResources(u);
    ParseModels();
    for (const auto& u : units_) AddSingularTests(u);
    for (auto& spec : pending_tests_) AddGenericTest(spec);
    for (auto& spec : pending_unit_tests_) AddUnitTest(spec);
    ResolveDependencies();
    return std::move(p_);
  }

 private:
  // The root project or one installed package, while its files load.
  struct PackageDir {
    std::string name;
    fs::path dir;
    YAML::Node yml;  // its dbt_project.yml
  };

  const PackageDir* FindUnit(const std::string& name) const {
    for (const auto& u : units_) {
      if (u.name == name) return &u;
    }
    return nullptr;
  }

  // The packages under packages-install-path, each with its dbt_project.yml. A
  // packages.yml / dependencies.yml that lists more packages than are installed is an
  // error that says to run `pdv transform deps`, as dbt does.
  std::vector<PackageDir> InstalledPackages(const YAML::Node& yml) {
    fs::path install =
        dir_ / (yml["packages-install-path"] ? yml["packages-install-path"].as<std::string>()
                                             : std::string(kPackagesInstallPath));
    std::vector<PackageDir> out;
    if (fs::is_directory(install)) {
      std::vector<fs::path> dirs;
      for (const auto& e : fs::directory_iterator(install)) {
        if (e.is_directory() && fs::exists(e.path() / "dbt_project.yml")) dirs.push_back(e.path());
      }
      std::sort(dirs.begin(), dirs.end());
      for (const auto& d : dirs) {
        std::string file = Rel(d / "dbt_project.yml", dir_);
        YAML::Node pyml = LoadYaml(ReadFile(d / "dbt_project.yml"), file);
        if (!pyml.IsMap() || !pyml["name"]) throw LoadError{file + ": 'name' is required"};
        std::string name = pyml["name"].as<std::string>();
        if (name == p_.name || p_.IsPackage(name)) {
          throw LoadError{fmt::format("{}: a second project named '{}'", file, name)};
        }
        p_.packages.push_back(
            Package{name, d.string(), pyml["version"] ? pyml["version"].as<std::string>() : ""});
        out.push_back(PackageDir{name, d, pyml});
      }
    }
    auto specs = ReadPackageSpecs(dir_.string());
    if (!specs.ok()) throw LoadError{specs.message()};
    if (specs->size() > out.size()) {
      throw LoadError{fmt::format(
          "{} lists {} package(s), but only {} are installed in {}: run `pdv transform deps`",
          specs->front().defined_at.substr(0, specs->front().defined_at.find(':')), specs->size(),
          out.size(), Rel(install, dir_))};
    }
    return out;
  }

  void LoadMacros(const PackageDir& u) {
    for (const auto& dir : PathList(u.yml, "macro-paths", "macros")) {
      for (const auto& f : FilesUnder(u.dir / dir, ".sql")) AddMacroFile(f, u.name);
    }
    for (const auto& dir : PathList(u.yml, "test-paths", "tests")) {
      for (const auto& f : FilesUnder(u.dir / dir / "generic", ".sql")) AddMacroFile(f, u.name);
    }
  }

  void LoadResources(const PackageDir& u) {
    for (const auto& dir : PathList(u.yml, "model-paths", "models")) {
      for (const auto& f : FilesUnder(u.dir / dir, ".sql")) AddModel(f, u.dir / dir, u);
    }
    std::vector<std::string> seed_dirs = PathList(u.yml, "seed-paths", "seeds");
    for (const auto& dir : seed_dirs) {
      for (const auto& f : FilesUnder(u.dir / dir, ".csv")) AddSeed(f, u.dir / dir, u);
    }
    for (const auto& dir : PathList(u.yml, "model-paths", "models")) {
      for (const auto& f : FilesUnder(u.dir / dir, ".yml")) LoadSchemaFile(f, u.name);
      for (const auto& f : FilesUnder(u.dir / dir, ".yaml")) LoadSchemaFile(f, u.name);
    }
    for (const auto& dir : seed_dirs) {
      for (const auto& f : FilesUnder(u.dir / dir, ".yml")) LoadSchemaFile(f, u.name);
    }
    for (const auto& dir : PathList(u.yml, "snapshot-paths", "snapshots")) {
      for (const auto& f : FilesUnder(u.dir / dir, ".sql")) AddSnapshotFile(f, u.dir / dir, u);
      for (const auto& f : FilesUnder(u.dir / dir, ".yml")) LoadSchemaFile(f, u.name);
    }
  }

  // snapshots/*.sql: one {% snapshot name %} block per file.
  void AddSnapshotFile(const fs::path& f, const fs::path& root, const PackageDir& u) {
    std::string rel = Rel(f, dir_);
    std::string code = ReadFile(f);
    auto tmpl = jinja::Template::Parse(code, rel);
    if (!tmpl.ok()) throw LoadError{tmpl.message()};
    std::vector<const jinja::Node*> blocks;
    for (const auto& n : (*tmpl)->nodes()) {
      if (n->kind == jinja::Node::Kind::kSnapshot) blocks.push_back(n.get());
    }
    if (blocks.empty()) return;  // a file of macros only
    if (blocks.size() > 1) {
      throw LoadError{
          fmt::format("{}:{}: one {{% snapshot %}} per file, please", rel, blocks[1]->line)};
    }
    AddSnapshot(blocks[0]->text, rel, Rel(f, root), code, *tmpl, u);
  }

  void AddSnapshot(const std::string& name, const std::string& file, const std::string& path,
                   const std::string& code, std::shared_ptr<const jinja::Template> tmpl,
                   const PackageDir& u) {
    Node n;
    n.resource_type = NodeType::kSnapshot;
    n.name = name;
    n.package_name = u.name;
    n.unique_id = fmt::format("snapshot.{}.{}", u.name, name);
    if (p_.nodes.count(n.unique_id)) {
      throw LoadError{fmt::format("{}: a second snapshot named '{}'", file, name)};
    }
    n.original_file_path = file;
    n.path = path;
    n.fqn.push_back(u.name);
    for (const auto& part : fs::path(path).parent_path()) n.fqn.push_back(part.string());
    n.fqn.push_back(name);
    n.raw_code = code;
    n.tmpl = std::move(tmpl);
    n.config =
        ResourceConfig(u, "snapshots", std::vector<std::string>(n.fqn.begin() + 1, n.fqn.end()));
    n.config["materialized"] = "snapshot";
    p_.nodes[n.unique_id] = std::move(n);
  }

  // The config dbt_project.yml's `<resource>:` tree gives a node of `u` at `path` (its
  // folders and name): the package's own tree, then the root project's entry for the
  // package, which overrides it.
  nlohmann::json ResourceConfig(const PackageDir& u, const std::string& resource,
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
    std::string where =
        u.name == p_.name ? "dbt_project.yml" : Rel(u.dir / "dbt_project.yml", dir_);
    if (Status s = NormalizeBoolConfigs(
            config, fmt::format("{} ({}: {})", where, resource, fmt::join(path, ".")));
        !s.ok()) {
      throw LoadError{s.message()};
    }
    return config;
  }

  // dbt renders dbt_project.yml's values ("{{ 'table' if target.name == 'prod' else
  // 'view' }}"), all but the hooks, which render when they run.
  void RenderConfigValues(nlohmann::json& config, const std::string& package) {
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

  void LoadDispatch(const YAML::Node& yml) {
    if (!yml["dispatch"]) return;
    if (!yml["dispatch"].IsSequence()) {
      throw LoadError{fmt::format("dbt_project.yml:{}: dispatch must be a list",
                                  yml["dispatch"].Mark().line + 1)};
    }
    for (const auto& d : yml["dispatch"]) {
      if (!d.IsMap() || !d["macro_namespace"] || !d["search_order"] ||
          !d["search_order"].IsSequence()) {
        throw LoadError{fmt::format(
            "dbt_project.yml:{}: a dispatch entry needs macro_namespace and a search_order list",
            d.Mark().line + 1)};
      }
      auto& order = p_.dispatch[d["macro_namespace"].as<std::string>()];
      for (const auto& e : d["search_order"]) order.push_back(e.as<std::string>());
    }
  }

  // Package `u`'s vars: its own (global ones and those scoped to it), then the root
  // project's global ones and those scoped to `u`, then --vars.
  void LoadPackageVars(const PackageDir& u) {
    nlohmann::json vars = nlohmann::json::object();
    auto add = [&](const YAML::Node& from, bool own) {
      if (!from) return;
      nlohmann::json j = YamlToJson(from);
      if (!j.is_object()) return;
      for (const auto& [k, v] : j.items()) {
        if (k == u.name && v.is_object()) {
          for (const auto& [k2, v2] : v.items()) vars[k2] = v2;
        } else if (!(v.is_object() && (k == p_.name || (!own && p_.IsPackage(k))))) {
          vars[k] = v;
        }
      }
    };
    add(u.yml["vars"], true);
    add(root_yml_["vars"], false);
    for (const auto& [k, v] : cli_vars_.items()) vars[k] = v;
    p_.package_vars[u.name] = std::move(vars);
  }

  void LoadVars(const YAML::Node& yml) {
    if (yml["vars"]) {
      nlohmann::json vars = YamlToJson(yml["vars"]);
      for (const auto& [k, v] : vars.items()) {
        if (k == p_.name && v.is_object()) {
          for (const auto& [k2, v2] : v.items()) p_.vars[k2] = v2;
        } else {
          p_.vars[k] = v;
        }
      }
    }
    for (const auto& name : options_.declared_env) {
      // Secrets stay out of SQL and logs, declared or not.
      if (std::string refused = EnvVarDeclarationRefusal(name); !refused.empty()) {
        throw LoadError{refused};
      }
      p_.declared_env.insert(name);
    }
    if (!options_.vars_yaml.empty()) {
      nlohmann::json cli = YamlToJson(LoadYaml(options_.vars_yaml, "--vars"));
      if (!cli.is_object())
        throw LoadError{"--vars: expected a YAML mapping such as '{key: value}'"};
      for (const auto& [k, v] : cli.items()) p_.vars[k] = v;
      cli_vars_ = std::move(cli);
    }
  }

  void LoadTarget() {
    Target& t = p_.target;
    if (options_.platform_warehouse_url) {
      t.name = "pdv";
      t.type = "postgres";
      t.conninfo = *options_.platform_warehouse_url;
      t.schema = "public";
      // Nodes that do not depend on each other (tests, the snapshot beside the dimension)
      // run at once, one per core up to 4; `transform watch` runs one at a time.
      t.threads = std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 1, 4);
      auto parsed = pg::Conninfo::Parse(t.conninfo);
      if (!parsed.ok()) throw LoadError{"warehouse_url: " + parsed.message()};
      t.database = parsed->Get("dbname");
      t.host = parsed->Get("host");
      t.user = parsed->Get("user");
      if (auto port = parsed->Get("port"); !port.empty()) t.port = std::atoi(port.c_str());
      return;
    }
    std::vector<fs::path> candidates;
    if (!options_.profiles_dir.empty()) {
      candidates.push_back(fs::path(options_.profiles_dir) / "profiles.yml");
    } else {
      if (const char* env = std::getenv("DBT_PROFILES_DIR"))
        candidates.push_back(fs::path(env) / "profiles.yml");
      candidates.push_back(dir_ / "profiles.yml");
      if (const char* home = std::getenv("HOME"))
        candidates.push_back(fs::path(home) / ".dbt" / "profiles.yml");
    }
    fs::path file;
    for (const auto& c : candidates) {
      if (fs::exists(c)) {
        file = c;
        break;
      }
    }
    if (file.empty()) {
      throw LoadError{fmt::format("no profiles.yml found (looked in {}); pass --profiles-dir",
                                  candidates.front().parent_path().string())};
    }
    // As dbt does, only the chosen target's values are rendered (env_var() and the like),
    // so the variables of other targets need not exist.
    YAML::Node profiles = LoadYaml(ReadFile(file), file.string());
    YAML::Node profile = profiles[p_.profile];
    if (!profile)
      throw LoadError{fmt::format("{}: no profile named '{}'", file.string(), p_.profile)};
    jinja::Environment env;
    Node none;
    ContextCapture capture;
    ValueDict ctx =
        MakeContext(p_, none, {.parse = true, .env_scope = EnvScope::kProfiles}, &capture);
    auto render = [&](const YAML::Node& value) -> std::string {
      std::string text = value.as<std::string>();
      if (text.find("{{") == std::string::npos && text.find("{%") == std::string::npos) return text;
      auto tmpl =
          jinja::Template::Parse(text, fmt::format("{}:{}", file.string(), value.Mark().line + 1));
      if (!tmpl.ok()) throw LoadError{tmpl.message()};
      auto r = env.Render(**tmpl, ctx);
      if (!r.ok()) {
        // The template is one value: its line is the YAML line, not the template's.
        std::string msg = r.message();
        size_t cut = msg.find(": ", msg.find(file.string()) + file.string().size() + 1);
        throw LoadError{fmt::format("{}:{}: {}", file.string(), value.Mark().line + 1,
                                    cut == std::string::npos ? msg : msg.substr(cut + 2))};
      }
      return *r;
    };
    std::string target_name = !options_.target.empty() ? options_.target
                              : profile["target"]      ? render(profile["target"])
                                                       : "dev";
    YAML::Node out = profile["outputs"][target_name];
    if (!out) {
      throw LoadError{fmt::format("{}: profile '{}' has no target '{}'", file.string(), p_.profile,
                                  target_name)};
    }
    t.name = target_name;
    t.type = out["type"] ? render(out["type"]) : "";
    if (t.type != "postgres") {
      throw LoadError{fmt::format("{}: target '{}' has type '{}': only postgres is supported",
                                  file.string(), target_name, t.type)};
    }
    auto get = [&](const char* a, const char* b = nullptr) -> std::string {
      if (out[a]) return render(out[a]);
      if (b && out[b]) return render(out[b]);
      return "";
    };
    t.host = get("host");
    t.user = get("user");
    t.database = get("dbname", "database");
    t.schema = get("schema");
    if (t.schema.empty())
      throw LoadError{fmt::format("{}: target '{}' needs a schema", file.string(), target_name)};
    std::string port = get("port");
    t.port = port.empty() ? 5432 : std::atoi(port.c_str());
    std::string threads = get("threads");
    t.threads = threads.empty() ? 1 : std::atoi(threads.c_str());
    auto kv = [](const std::string& k, const std::string& v) {
      std::string q;
      for (char c : v) q += (c == '\'' || c == '\\') ? std::string("\\") + c : std::string(1, c);
      return fmt::format("{}='{}' ", k, q);
    };
    t.conninfo = kv("host", t.host) + kv("port", std::to_string(t.port)) + kv("user", t.user) +
                 kv("dbname", t.database);
    std::string password = get("password", "pass");
    if (!password.empty()) t.conninfo += kv("password", password);
    std::string sslmode = get("sslmode");
    if (!sslmode.empty()) t.conninfo += kv("sslmode", sslmode);
  }

  void AddMacroText(const std::string& text, const std::string& name, const std::string& package) {
    auto tmpl = jinja::Template::Parse(text, name);
    if (!tmpl.ok()) throw LoadError{tmpl.message()};
    p_.env->AddMacros(*tmpl, package);
  }
  void AddMacroFile(const fs::path& f, const std::string& package) {
    AddMacroText(ReadFile(f), Rel(f, dir_), package);
    p_.macro_files.push_back(Rel(f, dir_));
  }

  void AddModel(const fs::path& f, const fs::path& root, const PackageDir& u) {
    Node n;
    n.resource_type = NodeType::kModel;
    n.name = f.stem().string();
    n.package_name = u.name;
    n.unique_id = fmt::format("model.{}.{}", u.name, n.name);
    if (p_.nodes.count(n.unique_id)) {
      throw LoadError{fmt::format("{}: a second model named '{}' (model names must be unique)",
                                  Rel(f, dir_), n.name)};
    }
    n.original_file_path = Rel(f, dir_);
    n.path = Rel(f, root);
    n.fqn.push_back(u.name);
    for (const auto& part : fs::path(n.path).parent_path()) n.fqn.push_back(part.string());
    n.fqn.push_back(n.name);
    n.raw_code = ReadFile(f);
    auto tmpl = jinja::Template::Parse(n.raw_code, n.original_file_path);
    if (!tmpl.ok()) throw LoadError{tmpl.message()};
    n.tmpl = *tmpl;
    n.config =
        ResourceConfig(u, "models", std::vector<std::string>(n.fqn.begin() + 1, n.fqn.end()));
    if (!n.config.contains("materialized")) n.config["materialized"] = "view";
    p_.nodes[n.unique_id] = std::move(n);
  }

  void AddSeed(const fs::path& f, const fs::path& root, const PackageDir& u) {
    Node n;
    n.resource_type = NodeType::kSeed;
    n.name = f.stem().string();
    n.package_name = u.name;
    n.unique_id = fmt::format("seed.{}.{}", u.name, n.name);
    n.original_file_path = Rel(f, dir_);
    n.path = Rel(f, root);
    n.fqn.push_back(u.name);
    for (const auto& part : fs::path(n.path).parent_path()) n.fqn.push_back(part.string());
    n.fqn.push_back(n.name);
    n.config = ResourceConfig(u, "seeds", std::vector<std::string>(n.fqn.begin() + 1, n.fqn.end()));
    n.config["materialized"] = "seed";
    p_.nodes[n.unique_id] = std::move(n);
  }

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
                    const std::string& column, const std::string& file,
                    const std::string& package) {
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
        throw LoadError{
            fmt::format("{}:{}: a test is a name or a one-key mapping", file, spec.line)};
      }
      size_t dot = spec.test.find('.');
      if (dot != std::string::npos) {  // dbt_utils.expression_is_true, dbt.not_null
        spec.test_package = spec.test.substr(0, dot);
        spec.test = spec.test.substr(dot + 1);
      }
      pending_tests_.push_back(std::move(spec));
    }
  }

  void LoadSchemaFile(const fs::path& f, const std::string& package) {
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
                    throw LoadError{fmt::format("{}:{}: {}", file,
                                                (*level)["freshness"].Mark().line + 1,
                                                seconds.message())};
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
        throw LoadError{fmt::format("{}:{}: a snapshot needs a name and a relation", file,
                                    snap.Mark().line + 1)};
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
        MergeConfig(p_.nodes["snapshot." + package + "." + name].config,
                    YamlToJson(snap["config"]));
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
        auto it = p_.nodes.find(id);
        if (it == p_.nodes.end()) {
          if (options_.warn) {
            options_.warn(fmt::format("{}:{}: {} '{}' is described but has no file", file,
                                      m.Mark().line + 1, kind, name));
          }
          continue;
        }
        Node& n = it->second;
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
          n.columns[cname] = {
              {"name", cname},
              {"description", col["description"] ? col["description"].as<std::string>() : ""}};
          CollectTests(col["tests"] ? col["tests"] : col["data_tests"], id, name, cname, file,
                       package);
        }
        CollectTests(m["tests"] ? m["tests"] : m["data_tests"], id, name, "", file, package);
      }
    }
  }

  // Renders each model in parse mode: records refs, sources and in-file config().
  void ParseModels() {
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

  // Renders `n` in parse mode: its config() calls and refs/sources are recorded.
  void ParseRender(Node& n) {
    ContextCapture capture;
    ValueDict ctx = MakeContext(p_, n, {.parse = true}, &capture);
    auto r = p_.env->Render(*n.tmpl, ctx, n.package_name);
    if (!r.ok()) throw LoadError{r.message()};
    MergeConfig(n.config, capture.config);
    RecordDependencies(n, capture);
  }

  void RecordDependencies(Node& n, const ContextCapture& capture) {
    for (const auto& [args, line] : capture.refs) {
      n.refs.push_back(args);
      ref_lines_[n.unique_id].push_back(line);
    }
    for (const auto& [args, line] : capture.sources) {
      n.sources.push_back(args);
      source_lines_[n.unique_id].push_back(line);
    }
  }

  void ResolveRelation(Node& n) {
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

  void AddSingularTests(const PackageDir& u) {
    for (const auto& test_dir : PathList(u.yml, "test-paths", "tests")) {
      for (const auto& f : FilesUnder(u.dir / test_dir, ".sql"))
        AddSingularTest(f, u.dir / test_dir, u);
    }
  }

  void AddSingularTest(const fs::path& f, const fs::path& dir, const PackageDir& u) {
    {
      std::string rel = Rel(f, dir);
      if (rel.starts_with("generic/")) return;
      Node n;
      n.resource_type = NodeType::kTest;
      n.name = f.stem().string();
      n.package_name = u.name;
      n.unique_id = fmt::format("test.{}.{}", u.name, n.name);
      n.original_file_path = Rel(f, dir_);
      n.path = rel;
      n.fqn = {u.name, n.name};
      n.raw_code = ReadFile(f);
      auto tmpl = jinja::Template::Parse(n.raw_code, n.original_file_path);
      if (!tmpl.ok()) throw LoadError{tmpl.message()};
      n.tmpl = *tmpl;
      n.config = ResourceConfig(u, u.yml["data_tests"] ? "data_tests" : "tests", {n.name});
      n.config["materialized"] = "test";
      n.schema = p_.target.schema;
      n.alias = n.name;
      ParseRender(n);
      if (n.enabled()) p_.nodes[n.unique_id] = std::move(n);
    }
  }

  void AddGenericTest(TestSpec& spec) {
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

  // Calls a generic test's macro in parse mode: its config() calls (dbt_utils sets
  // fail_calc that way) become the test's config, under the schema file's, as in dbt.
  void ParseTestMacro(Node& n, const Node& attached) {
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

  // A unit test: attached to its model, depending on the inputs it gives rows for (their
  // columns type the rows, so they are built first, as in dbt).
  void AddUnitTest(const UnitSpec& spec) {
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
    n.config = {{"materialized", "unit_test"}};
    if (ut.contains("config") && ut["config"].is_object()) MergeConfig(n.config, ut["config"]);
    if (!ut.contains("expect") || !ut["expect"].is_object()) {
      throw LoadError{fmt::format("{}: unit test '{}' needs expect: rows", where, n.name)};
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

  void ResolveDependencies() {
    for (auto& [id, n] : p_.nodes) {
      for (size_t i = 0; i < n.refs.size(); ++i) {
        const auto& ref = n.refs[i];
        const Node* target =
            p_.FindModelOrSeed(ref.back(), ref.size() > 1 ? ref[0] : "", n.package_name);
        if (!target) {
          int line = i < ref_lines_[id].size() ? ref_lines_[id][i] : 0;
          std::string where = n.defined_at.empty()
                                  ? fmt::format("{}:{}", n.original_file_path, line)
                                  : n.defined_at;
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
                                      n.original_file_path, line, n.sources[i][0],
                                      n.sources[i][1])};
        }
        if (std::find(n.depends_on.begin(), n.depends_on.end(), s->unique_id) == n.depends_on.end())
          n.depends_on.push_back(s->unique_id);
      }
    }
  }

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
};

}  // namespace

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
