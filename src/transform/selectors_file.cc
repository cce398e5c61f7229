// selectors.yml: dbt's YAML selector definitions (selector.h). A definition is a CLI-style
// string, a `method: value` pair, a full criterion (method, value, parents, children,
// parents_depth, children_depth, childrens_parents, indirect_selection, exclude), or a
// `union:` / `intersection:` list that may hold one `exclude:` item; `method: selector`
// reuses another selector's definition.

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "transform/context.h"
#include "transform/selector.h"

namespace pdv::transform {
namespace {

namespace fs = std::filesystem;

constexpr char kFile[] = "selectors.yml";

struct SelectorsParser {
  const Project& project;
  std::map<std::string, YAML::Node> definitions;  // by selector name
  std::map<std::string, SelectionSpec> done;
  std::vector<std::string> resolving;  // the `method: selector` chain, for cycles

  Status Error(const YAML::Node& at, const std::string& what) const {
    return Status::Error(fmt::format("{}:{}: {}", kFile, at.Mark().line + 1, what));
  }

  // A scalar's text, its Jinja rendered as dbt renders selectors.yml.
  Result<std::string> Text(const YAML::Node& n) const {
    std::string s = n.Scalar();
    if (s.find("{{") == std::string::npos && s.find("{%") == std::string::npos) return s;
    auto tmpl = jinja::Template::Parse(s, fmt::format("{}:{}", kFile, n.Mark().line + 1));
    if (!tmpl.ok()) return tmpl.status();
    Node scope;
    scope.package_name = project.name;
    scope.unique_id = "selectors." + project.name;
    ContextCapture capture;
    jinja::ValueDict ctx = MakeContext(project, scope, {.parse = true}, &capture);
    auto r = project.env->Render(**tmpl, ctx, project.name);
    if (!r.ok()) return r.status();
    std::string out = *r;
    while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) out.pop_back();
    while (!out.empty() && std::isspace(static_cast<unsigned char>(out.front()))) out.erase(0, 1);
    return out;
  }

  Result<bool> Flag(const YAML::Node& n, const std::string& key) const {
    if (!n.IsScalar()) return Error(n, fmt::format("'{}' must be true or false", key));
    auto t = Text(n);
    if (!t.ok()) return t.status();
    if (*t == "true" || *t == "True" || *t == "1") return true;
    if (*t == "false" || *t == "False" || *t == "0" || t->empty()) return false;
    return Error(n, fmt::format("'{}' must be true or false, not '{}'", key, *t));
  }

  Result<SelectionSpec> Named(const YAML::Node& at, const std::string& name) {
    if (auto it = done.find(name); it != done.end()) return it->second;
    auto def = definitions.find(name);
    if (def == definitions.end()) {
      return Error(at, fmt::format("no selector named '{}'", name));
    }
    if (std::find(resolving.begin(), resolving.end(), name) != resolving.end()) {
      std::string chain;
      for (const auto& r : resolving) chain += r + " -> ";
      return Error(at, fmt::format("selectors refer to each other in a cycle: {}{}", chain, name));
    }
    resolving.push_back(name);
    auto spec = Definition(def->second);
    resolving.pop_back();
    if (!spec.ok()) return spec;
    spec->raw = name;
    done[name] = *spec;
    return spec;
  }

  // The `exclude:` list as one union.
  Result<SelectionSpec> Exclusions(const YAML::Node& list) {
    if (!list.IsSequence()) return Error(list, "'exclude' must be a list");
    SelectionSpec u;
    u.kind = SelectionSpec::Kind::kUnion;
    for (const auto& item : list) {
      auto s = Definition(item);
      if (!s.ok()) return s;
      u.parts.push_back(std::move(*s));
    }
    return u;
  }

  static SelectionSpec Difference(SelectionSpec include, SelectionSpec exclude) {
    SelectionSpec d;
    d.kind = SelectionSpec::Kind::kDifference;
    d.parts.push_back(std::move(include));
    d.parts.push_back(std::move(exclude));
    return d;
  }

  Result<SelectionSpec> SetOperator(const YAML::Node& def, const std::string& op) {
    const YAML::Node list = def[op];
    if (!list.IsSequence()) return Error(list, fmt::format("'{}' must be a list", op));
    SelectionSpec s;
    s.kind = op == "union" ? SelectionSpec::Kind::kUnion : SelectionSpec::Kind::kIntersection;
    std::optional<SelectionSpec> excluded;
    for (const auto& item : list) {
      if (item.IsMap() && item["exclude"]) {
        if (excluded) {
          return Error(item, fmt::format("only one 'exclude' per '{}'", op));
        }
        auto e = Exclusions(item["exclude"]);
        if (!e.ok()) return e;
        excluded = std::move(*e);
        continue;
      }
      auto part = Definition(item);
      if (!part.ok()) return part;
      s.parts.push_back(std::move(*part));
    }
    if (excluded) return Difference(std::move(s), std::move(*excluded));
    return s;
  }

  Result<SelectionSpec> Criterion(const YAML::Node& def) {
    auto method = Text(def["method"]);
    if (!method.ok()) return method.status();
    if (!def["value"] || !def["value"].IsScalar()) {
      return Error(def, fmt::format("method '{}' needs a value", *method));
    }
    auto value = Text(def["value"]);
    if (!value.ok()) return value.status();
    SelectionSpec s;
    if (*method == "selector") {
      auto named = Named(def["value"], *value);
      if (!named.ok()) return named;
      s = std::move(*named);
    } else {
      s.method = *method;
      s.value = *value;
      s.raw = *method + ":" + *value;
      static const std::set<std::string> kKeys = {
          "method",         "value",         "children",          "parents",
          "children_depth", "parents_depth", "childrens_parents", "indirect_selection",
          "exclude",        "description"};
      for (const auto& kv : def) {
        std::string key = kv.first.as<std::string>();
        if (!kKeys.count(key)) return Error(kv.first, fmt::format("unknown key '{}'", key));
      }
      auto depth = [&](const char* flag, const char* depth_key) -> Result<int> {
        bool on = false;
        if (def[flag]) {
          auto f = Flag(def[flag], flag);
          if (!f.ok()) return f.status();
          on = *f;
        }
        if (!on) return 0;
        if (!def[depth_key] || def[depth_key].IsNull()) return -1;
        try {
          return def[depth_key].as<int>();
        } catch (const YAML::Exception&) {
          return Error(def[depth_key], fmt::format("'{}' must be a number", depth_key));
        }
      };
      auto up = depth("parents", "parents_depth");
      if (!up.ok()) return up.status();
      auto down = depth("children", "children_depth");
      if (!down.ok()) return down.status();
      s.parents_depth = *up;
      s.children_depth = *down;
      if (def["childrens_parents"]) {
        auto f = Flag(def["childrens_parents"], "childrens_parents");
        if (!f.ok()) return f.status();
        s.childrens_parents = *f;
      }
      if (def["indirect_selection"]) {
        auto t = Text(def["indirect_selection"]);
        if (!t.ok()) return t.status();
        auto mode = ParseIndirectSelection(*t);
        if (!mode.ok()) return Error(def["indirect_selection"], mode.message());
        s.indirect = *mode;
      }
    }
    if (def["exclude"]) {
      auto e = Exclusions(def["exclude"]);
      if (!e.ok()) return e;
      return Difference(std::move(s), std::move(*e));
    }
    return s;
  }

  Result<SelectionSpec> Definition(const YAML::Node& def) {
    if (!def || def.IsNull()) return Error(def, "an empty selector definition");
    if (def.IsScalar()) {  // CLI-style
      auto t = Text(def);
      if (!t.ok()) return t.status();
      auto c = ParseCriterion(*t);
      if (!c.ok()) return Error(def, c.message());
      return c;
    }
    if (!def.IsMap())
      return Error(def, "a definition is a string, a mapping or union/intersection");
    if (def["union"]) return SetOperator(def, "union");
    if (def["intersection"]) return SetOperator(def, "intersection");
    if (def["method"]) return Criterion(def);
    if (def.size() == 1) {  // method: value
      std::string method = def.begin()->first.as<std::string>();
      if (method == "exclude")
        return Error(def, "'exclude' must sit beside a method or in a union");
      if (!def.begin()->second.IsScalar())
        return Error(def, fmt::format("method '{}' needs a single value", method));
      auto value = Text(def.begin()->second);
      if (!value.ok()) return value.status();
      if (method == "selector") return Named(def.begin()->second, *value);
      SelectionSpec s;
      s.method = method;
      s.value = *value;
      s.raw = method + ":" + *value;
      return s;
    }
    return Error(def, "expected union, intersection, a method: value pair or method/value keys");
  }
};

}  // namespace

Result<NamedSelectors> LoadSelectors(const Project& project) {
  NamedSelectors out;
  fs::path path = fs::path(project.dir) / kFile;
  if (!fs::exists(path)) return out;
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  YAML::Node root;
  try {
    root = YAML::Load(ss.str());
  } catch (const YAML::Exception& e) {
    return Status::Error(fmt::format("{}:{}: {}", kFile, e.mark.line + 1, e.msg));
  }
  if (root.IsNull()) return out;
  if (!root.IsMap() || !root["selectors"] || !root["selectors"].IsSequence()) {
    return Status::Error(fmt::format("{}:1: expected a 'selectors:' list", kFile));
  }
  SelectorsParser parser{.project = project};
  std::vector<std::pair<std::string, YAML::Node>> entries;
  try {
    for (const auto& s : root["selectors"]) {
      if (!s.IsMap() || !s["name"] || !s["name"].IsScalar() || !s["definition"]) {
        return parser.Error(s, "a selector needs a name and a definition");
      }
      std::string name = s["name"].Scalar();
      if (parser.definitions.count(name)) {
        return parser.Error(s, fmt::format("a second selector named '{}'", name));
      }
      parser.definitions[name] = s["definition"];
      entries.emplace_back(name, s);
    }
    for (const auto& [name, s] : entries) {
      auto spec = parser.Named(s["definition"], name);
      if (!spec.ok()) return spec.status();
      out.by_name[name] = std::move(*spec);
      if (s["default"]) {
        auto d = parser.Flag(s["default"], "default");
        if (!d.ok()) return d.status();
        if (*d && out.default_name) {
          return parser.Error(s["default"],
                              fmt::format("selectors '{}' and '{}' both say default: true",
                                          *out.default_name, name));
        }
        if (*d) out.default_name = name;
      }
    }
  } catch (const YAML::Exception& e) {
    return Status::Error(fmt::format("{}:{}: {}", kFile, e.mark.line + 1, e.msg));
  }
  return out;
}

}  // namespace pdv::transform
