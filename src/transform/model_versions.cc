#include "transform/model_versions.h"

#include <fmt/format.h>

#include "transform/config_values.h"
#include "transform/project_loader.h"

namespace pdv::transform {

std::string VersionedRefName(const std::string& name, const std::string& version) {
  return fmt::format("{}.v{}", name, version);
}

const Node* FindVersionedModel(const std::map<std::string, Node>& nodes, const std::string& package,
                               const std::string& name) {
  // Pinned: the unique id itself.
  auto exact = nodes.find(fmt::format("model.{}.{}", package, name));
  if (exact != nodes.end() && !exact->second.version.empty()) return &exact->second;
  // Unpinned: the latest of model.<package>.<name>.v*.
  std::string prefix = fmt::format("model.{}.{}.v", package, name);
  for (auto it = nodes.lower_bound(prefix); it != nodes.end() && it->first.starts_with(prefix);
       ++it) {
    const Node& n = it->second;
    if (n.name == name && n.version == n.latest_version) return &n;
  }
  return nullptr;
}

namespace project_internal {

namespace {

std::string Scalar(const YAML::Node& n) { return n && n.IsScalar() ? n.Scalar() : std::string(); }

// Python's ordering of versions as dbt compares them: numerically when both are numbers.
bool VersionLess(const std::string& a, const std::string& b) {
  try {
    size_t ia = 0, ib = 0;
    double x = std::stod(a, &ia), y = std::stod(b, &ib);
    if (ia == a.size() && ib == b.size()) return x < y;
  } catch (const std::exception&) {
  }
  return a < b;
}

}  // namespace

void Loader::ApplyVersions(const YAML::Node& m, const std::string& file,
                           const std::string& package) {
  const std::string name = m["name"].as<std::string>();
  const YAML::Node& versions = m["versions"];
  if (!versions.IsSequence() || versions.size() == 0) {
    throw LoadError{fmt::format("{}:{}: versions of '{}' must be a list of {{v: ...}}", file,
                                versions.Mark().line + 1, name)};
  }
  std::string latest = Scalar(m["latest_version"]);
  for (const auto& v : versions) {
    if (Scalar(v["v"]).empty())
      throw LoadError{
          fmt::format("{}:{}: a version of '{}' needs v:", file, v.Mark().line + 1, name)};
    if (!m["latest_version"] && (latest.empty() || VersionLess(latest, Scalar(v["v"]))))
      latest = Scalar(v["v"]);
  }
  auto apply_config = [&](Node& n, const YAML::Node& config) {
    if (!config) return;
    nlohmann::json c = YamlToJson(config);
    RenderConfigValues(c, package);
    if (Status s = NormalizeBoolConfigs(c, fmt::format("{}:{}", file, config.Mark().line + 1));
        !s.ok())
      throw LoadError{s.message()};
    MergeConfig(n.config, c);
  };
  auto apply_columns = [&](Node& n, const YAML::Node& columns, const std::string& test_name) {
    for (const auto& col : columns) {
      if (!col["name"]) continue;  // include/exclude entries: the model's columns stay
      std::string cname = col["name"].as<std::string>();
      n.columns[cname] = {
          {"name", cname},
          {"description", col["description"] ? col["description"].as<std::string>() : ""}};
      CollectTests(col["tests"] ? col["tests"] : col["data_tests"], n.unique_id, test_name, cname,
                   file, package);
    }
  };
  for (const auto& v : versions) {
    const std::string version = Scalar(v["v"]);
    std::string defined_in =
        v["defined_in"] ? v["defined_in"].as<std::string>() : fmt::format("{}_v{}", name, version);
    auto it = p_.nodes.find(fmt::format("model.{}.{}", package, defined_in));
    if (it == p_.nodes.end()) {
      throw LoadError{fmt::format("{}:{}: version {} of model '{}' has no file {}.sql", file,
                                  v.Mark().line + 1, version, name, defined_in)};
    }
    Node n = std::move(it->second);
    p_.nodes.erase(it);
    n.name = name;
    n.version = version;
    n.latest_version = latest;
    n.unique_id = fmt::format("model.{}.{}", package, VersionedRefName(name, version));
    if (p_.nodes.count(n.unique_id)) {
      throw LoadError{fmt::format("{}:{}: version {} of model '{}' is defined twice", file,
                                  v.Mark().line + 1, version, name)};
    }
    if (!n.fqn.empty()) n.fqn.back() = name;
    n.fqn.push_back("v" + version);
    // The model's properties, then the version's own over them.
    if (m["description"]) n.description = m["description"].as<std::string>();
    if (v["description"]) n.description = v["description"].as<std::string>();
    apply_config(n, m["config"]);
    apply_config(n, v["config"]);
    std::string test_name = fmt::format("{}_v{}", name, version);
    apply_columns(n, m["columns"], test_name);
    apply_columns(n, v["columns"], test_name);
    CollectTests(m["tests"] ? m["tests"] : m["data_tests"], n.unique_id, test_name, "", file,
                 package);
    CollectTests(v["tests"] ? v["tests"] : v["data_tests"], n.unique_id, test_name, "", file,
                 package);
    p_.nodes[n.unique_id] = std::move(n);
  }
}

}  // namespace project_internal
}  // namespace pdv::transform
