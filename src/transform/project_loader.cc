// Loader: dbt_project.yml, vars, dispatch, the profile (target) and installed packages;
// and the YAML/file helpers the loader's parts share.

#include "transform/project_loader.h"

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
#include "transform/materialization_macros.h"
#include "transform/jinja_ast.h"
#include "transform/packages.h"

namespace pdv::transform::project_internal {

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

Project Loader::Load() {
  dir_ = fs::absolute(options_.project_dir.empty() ? "." : options_.project_dir).lexically_normal();
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
  AddMacroText(kMaterializationMacros, "<dbt materialization macros>",
               jinja::Environment::kGlobalPackage);
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
  LoadDocs();
  LoadProjectHooks();
  CheckConfigKeys();
  return std::move(p_);
}

const Loader::PackageDir* Loader::FindUnit(const std::string& name) const {
  for (const auto& u : units_) {
    if (u.name == name) return &u;
  }
  return nullptr;
}

std::vector<Loader::PackageDir> Loader::InstalledPackages(const YAML::Node& yml) {
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

void Loader::LoadDispatch(const YAML::Node& yml) {
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

void Loader::LoadPackageVars(const PackageDir& u) {
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

void Loader::LoadVars(const YAML::Node& yml) {
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
    if (!cli.is_object()) throw LoadError{"--vars: expected a YAML mapping such as '{key: value}'"};
    for (const auto& [k, v] : cli.items()) p_.vars[k] = v;
    cli_vars_ = std::move(cli);
  }
}

void Loader::LoadTarget() {
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
    throw LoadError{
        fmt::format("{}: profile '{}' has no target '{}'", file.string(), p_.profile, target_name)};
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

}  // namespace pdv::transform::project_internal
