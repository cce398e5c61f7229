// The selection methods that read the project itself (selector.h): fqn, tag, path, file,
// package, source, resource_type, config.<key>, test_type, test_name, unit_test, group,
// access, version. The ones that read an earlier run are in selector_state.cc.

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "transform/selector.h"

namespace pdv::transform {
namespace {

// fnmatch: `*` any run, `?` one character, `[abc]` / `[a-z]` / `[!a]` one of a set.
bool Glob(std::string_view p, std::string_view t) {
  while (!p.empty()) {
    if (p[0] == '*') {
      p.remove_prefix(1);
      for (size_t i = 0; i <= t.size(); ++i) {
        if (Glob(p, t.substr(i))) return true;
      }
      return false;
    }
    if (t.empty()) return false;
    if (p[0] == '?') {
      p.remove_prefix(1);
      t.remove_prefix(1);
      continue;
    }
    if (p[0] == '[') {
      size_t close = p.find(']', 2);
      if (close != std::string_view::npos) {
        std::string_view set = p.substr(1, close - 1);
        bool negate = !set.empty() && (set[0] == '!' || set[0] == '^');
        if (negate) set.remove_prefix(1);
        bool in = false;
        for (size_t i = 0; i < set.size(); ++i) {
          if (i + 2 < set.size() && set[i + 1] == '-') {
            in |= t[0] >= set[i] && t[0] <= set[i + 2];
            i += 2;
          } else {
            in |= t[0] == set[i];
          }
        }
        if (in == negate) return false;
        p.remove_prefix(close + 1);
        t.remove_prefix(1);
        continue;
      }
    }
    if (p[0] != t[0]) return false;
    p.remove_prefix(1);
    t.remove_prefix(1);
  }
  return t.empty();
}

bool HasWildcard(std::string_view s) { return s.find_first_of("*?[]") != std::string_view::npos; }

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

// dbt's is_selected_node: the fqn's leaf equals the selector, or the selector's dotted
// parts are a prefix of the fqn, the first part with a wildcard matching the rest.
bool FqnMatches(const std::vector<std::string>& fqn, const std::string& selector) {
  if (!fqn.empty() && fqn.back() == selector) return true;
  std::vector<std::string> flat;
  for (const auto& part : fqn) {
    for (auto& piece : Split(part, '.')) flat.push_back(piece);
  }
  std::vector<std::string> parts = Split(selector, '.');
  if (flat.size() < parts.size()) return false;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (HasWildcard(parts[i])) {
      std::string pattern, rest;
      for (size_t j = i; j < parts.size(); ++j) pattern += (j > i ? "." : "") + parts[j];
      for (size_t j = i; j < flat.size(); ++j) rest += (j > i ? "." : "") + flat[j];
      return Glob(pattern, rest);
    }
    if (flat[i] != parts[i]) return false;
  }
  return true;
}

// A config value against a selector text, as dbt's config method compares: equal, true /
// false for booleans, membership for lists.
bool ConfigMatches(const nlohmann::json& v, const std::string& selector) {
  auto one = [&](const nlohmann::json& x) {
    if (x.is_string()) return x.get<std::string>() == selector;
    if (x.is_boolean()) {
      std::string lower = selector;
      std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
      return lower == (x.get<bool>() ? "true" : "false");
    }
    if (x.is_number()) return x.dump() == selector;
    return false;
  };
  if (v.is_array()) return std::any_of(v.begin(), v.end(), one);
  return one(v);
}

// Version identifiers compare as numbers when both are, else as text.
int CompareVersions(const std::string& x, const std::string& y) {
  try {
    size_t px = 0, py = 0;
    double dx = std::stod(x, &px), dy = std::stod(y, &py);
    if (px == x.size() && py == y.size()) return dx < dy ? -1 : dx > dy ? 1 : 0;
  } catch (...) {
  }
  return x < y ? -1 : x > y ? 1 : 0;
}

}  // namespace

Result<std::set<std::string>> Selector::Method(const std::string& method,
                                               const std::string& value) const {
  if (method == "state") return StateMethod(value);
  if (method == "result") return ResultMethod(value);
  if (method == "source_status") return SourceStatusMethod(value);
  if (method == "selector") {
    return Status::Error(fmt::format(
        "'selector:{}' is for selectors.yml definitions; use --selector {}", value, value));
  }
  static const std::set<std::string> kTestTypes = {"data", "unit", "singular", "generic", "schema"};
  if (method == "test_type" && !kTestTypes.count(value)) {
    return Status::Error(
        fmt::format("test_type '{}' is not one of data, unit, singular, generic", value));
  }
  static const std::set<std::string> kVersions = {"latest", "old", "prerelease", "none"};
  if (method == "version" && !kVersions.count(value)) {
    return Status::Error(
        fmt::format("version '{}' is not one of latest, old, prerelease, none", value));
  }
  if (method == "resource_type" && !ParseNodeType(value)) {
    return Status::Error(fmt::format(
        "resource_type '{}' is not one of model, seed, test, unit_test, snapshot, source", value));
  }
  std::string package_value = value == "this" ? project_.name : value;
  std::set<std::string> out;
  for (const auto& [id, n] : project_.nodes) {
    bool match = false;
    if (method == "fqn") {
      if (value == "*") {  // everything, sources included (dbt's default selection)
        out.insert(id);
        continue;
      }
      if (n.resource_type == NodeType::kSource) continue;
      match = FqnMatches(n.fqn, value);
      // Unqualified: also within any package (dbt tries each package's name in front).
      // A unit test's fqn holds its model's name, which must not select it.
      if (!match && n.fqn.size() > 1 && n.resource_type != NodeType::kUnitTest) {
        match = FqnMatches(std::vector<std::string>(n.fqn.begin() + 1, n.fqn.end()), value);
      }
    } else if (method == "tag") {
      auto tags = n.tags();
      match = std::any_of(tags.begin(), tags.end(),
                          [&](const std::string& t) { return Glob(value, t); });
    } else if (method == "path") {
      std::string v = value;
      while (v.size() > 1 && v.back() == '/') v.pop_back();
      if (v.starts_with("./")) v.erase(0, 2);
      const std::string& p = n.original_file_path;
      match = p == v || p.starts_with(v + "/") || Glob(v, p);
      // A glob of folders: any folder of the file's matching.
      for (auto dir = std::filesystem::path(p).parent_path(); !match && !dir.empty();
           dir = dir.parent_path()) {
        match = Glob(v, dir.string());
      }
    } else if (method == "file") {
      std::filesystem::path p(n.original_file_path);
      match = Glob(value, p.filename().string()) || Glob(value, p.stem().string());
    } else if (method == "package") {
      match = Glob(package_value, n.package_name);
    } else if (method == "source") {
      if (n.resource_type != NodeType::kSource) continue;
      auto parts = Split(value, '.');
      if (parts.size() == 1) match = Glob(parts[0], n.source_name);
      if (parts.size() == 2) match = Glob(parts[0], n.source_name) && Glob(parts[1], n.name);
      if (parts.size() == 3) {
        match = Glob(parts[0], n.package_name) && Glob(parts[1], n.source_name) &&
                Glob(parts[2], n.name);
      }
    } else if (method == "resource_type") {
      match = NodeTypeName(n.resource_type) == value;
    } else if (method.starts_with("config.")) {
      const nlohmann::json* v = &n.config;
      for (const auto& key : Split(method.substr(7), '.')) {
        if (!v->is_object() || !v->contains(key)) {
          v = nullptr;
          break;
        }
        v = &(*v)[key];
      }
      match = v && ConfigMatches(*v, value);
    } else if (method == "test_type") {
      bool generic = n.resource_type == NodeType::kTest && !n.test_macro.empty();
      bool singular = n.resource_type == NodeType::kTest && n.test_macro.empty();
      match = (value == "unit" && n.resource_type == NodeType::kUnitTest) ||
              (value == "data" && n.resource_type == NodeType::kTest) ||
              ((value == "generic" || value == "schema") && generic) ||
              (value == "singular" && singular);
    } else if (method == "test_name") {
      if (n.resource_type != NodeType::kTest || n.test_macro.empty()) continue;
      std::string name = n.test_macro.substr(5);  // test_<name>
      match = Glob(value, name) || Glob(value, n.test_macro_package + "." + name);
    } else if (method == "unit_test") {
      if (n.resource_type != NodeType::kUnitTest) continue;
      match = value == "*" || Glob(value, n.name) || FqnMatches(n.fqn, value) ||
              (n.fqn.size() > 1 &&
               FqnMatches(std::vector<std::string>(n.fqn.begin() + 1, n.fqn.end()), value));
    } else if (method == "group") {
      match = n.config.contains("group") && n.config["group"].is_string() &&
              Glob(value, n.config["group"].get<std::string>());
    } else if (method == "access") {
      if (n.resource_type != NodeType::kModel) continue;
      std::string access = n.config.value("access", "protected");
      match = access == value;
    } else if (method == "version") {
      if (n.resource_type != NodeType::kModel) continue;
      bool versioned = !n.version.empty();
      if (value == "none") {
        match = !versioned;
      } else if (versioned) {
        int c = n.latest_version.empty() ? 0 : CompareVersions(n.version, n.latest_version);
        match = (value == "latest" && c == 0) || (value == "old" && c < 0) ||
                (value == "prerelease" && c > 0);
      }
    } else {
      return Status::Error(
          fmt::format("unknown selection method '{}:' (known: fqn, tag, path, file, package, "
                      "source, resource_type, config.<key>, test_type, test_name, unit_test, "
                      "group, access, version, state, result, source_status)",
                      method));
    }
    if (match) out.insert(id);
  }
  return out;
}

}  // namespace pdv::transform
