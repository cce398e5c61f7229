#include "transform/graph.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <sstream>

namespace pdv::transform {

Result<Graph> Graph::Build(const Project& project) {
  Graph g;
  g.project_ = &project;
  for (const auto& [id, n] : project.nodes) {
    g.parents_[id];
    g.children_[id];
    for (const auto& dep : n.depends_on) {
      g.parents_[id].insert(dep);
      g.children_[dep].insert(id);
    }
  }
  // Depth-first topological sort; a grey node met again closes a cycle.
  std::map<std::string, int> state;  // 0 new, 1 on the stack, 2 done
  std::vector<std::string> stack;
  std::string cycle;
  std::function<bool(const std::string&)> visit = [&](const std::string& id) {
    state[id] = 1;
    stack.push_back(id);
    for (const auto& p : g.parents_[id]) {
      if (state[p] == 1) {
        auto from = std::find(stack.begin(), stack.end(), p);
        for (auto it = from; it != stack.end(); ++it) cycle += *it + " --> ";
        cycle += p;
        return false;
      }
      if (state[p] == 0 && !visit(p)) return false;
    }
    stack.pop_back();
    state[id] = 2;
    g.order_.push_back(id);
    return true;
  };
  for (const auto& [id, n] : project.nodes) {
    if (state[id] == 0 && !visit(id)) {
      return Status::Error(fmt::format("found a cycle: {}", cycle));
    }
  }
  return g;
}

const std::set<std::string>& Graph::parents(const std::string& id) const {
  static const std::set<std::string> kNone;
  auto it = parents_.find(id);
  return it == parents_.end() ? kNone : it->second;
}

const std::set<std::string>& Graph::children(const std::string& id) const {
  static const std::set<std::string> kNone;
  auto it = children_.find(id);
  return it == children_.end() ? kNone : it->second;
}

namespace {

std::set<std::string> Walk(const std::map<std::string, std::set<std::string>>& edges,
                           const std::string& id, int depth) {
  std::set<std::string> seen;
  std::vector<std::string> frontier{id};
  for (int d = 0; (depth < 0 || d < depth) && !frontier.empty(); ++d) {
    std::vector<std::string> next;
    for (const auto& f : frontier) {
      auto it = edges.find(f);
      if (it == edges.end()) continue;
      for (const auto& e : it->second) {
        if (seen.insert(e).second) next.push_back(e);
      }
    }
    frontier = std::move(next);
  }
  return seen;
}

std::vector<std::string> SplitOn(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

// Shell-style wildcard: `*` matches any run of characters.
bool Glob(std::string_view p, std::string_view t) {
  if (p.empty()) return t.empty();
  if (p[0] == '*') return Glob(p.substr(1), t) || (!t.empty() && Glob(p, t.substr(1)));
  return !t.empty() && p[0] == t[0] && Glob(p.substr(1), t.substr(1));
}

}  // namespace

std::set<std::string> Graph::Ancestors(const std::string& id, int depth) const {
  return Walk(parents_, id, depth);
}

std::set<std::string> Graph::Descendants(const std::string& id, int depth) const {
  return Walk(children_, id, depth);
}

Result<std::set<std::string>> Graph::Method(const std::string& method,
                                            const std::string& value) const {
  std::set<std::string> out;
  for (const auto& [id, n] : project_->nodes) {
    bool match = false;
    if (method == "tag") {
      auto tags = n.tags();
      match = std::any_of(tags.begin(), tags.end(),
                          [&](const std::string& t) { return Glob(value, t); });
    } else if (method == "path") {
      std::string v = value;
      while (v.size() > 1 && v.back() == '/') v.pop_back();
      const std::string& p = n.original_file_path;
      match = p == v || p.starts_with(v + "/");
    } else if (method == "source") {
      if (n.resource_type != NodeType::kSource) continue;
      auto parts = SplitOn(value, '.');
      if (parts.size() == 1) match = Glob(parts[0], n.source_name);
      if (parts.size() == 2) match = Glob(parts[0], n.source_name) && Glob(parts[1], n.name);
    } else if (method == "resource_type") {
      match = NodeTypeName(n.resource_type) == value;
    } else if (method == "fqn") {
      if (n.resource_type == NodeType::kSource) continue;
      auto parts = SplitOn(value, '.');
      if (parts.size() == 1 && Glob(parts[0], n.name)) {
        match = true;
      } else {
        // A prefix of the fqn, with or without the project name.
        for (size_t start : {size_t{0}, size_t{1}}) {
          if (start + parts.size() > n.fqn.size()) continue;
          bool all = true;
          for (size_t i = 0; i < parts.size(); ++i) all &= Glob(parts[i], n.fqn[start + i]);
          if (all) match = true;
        }
      }
    } else if (method.starts_with("config.")) {
      std::string key = method.substr(7);
      if (n.config.contains(key)) {
        const auto& v = n.config[key];
        if (v.is_string())
          match = Glob(value, v.get<std::string>());
        else if (v.is_array()) {
          for (const auto& e : v) match |= e.is_string() && e.get<std::string>() == value;
        } else {
          match = v.dump() == value;
        }
      }
    } else {
      return Status::Error(
          fmt::format("unknown selection method '{}:' (known: tag, path, source, "
                      "fqn, resource_type, config.<key>)",
                      method));
    }
    if (match) out.insert(id);
  }
  return out;
}

Result<std::set<std::string>> Graph::Criterion(const std::string& text) const {
  std::string s = text;
  bool at = false;
  int up = 0, down = 0;  // 0 none, -1 all, n depth
  if (s.starts_with("@")) {
    at = true;
    s.erase(0, 1);
  }
  size_t plus = s.find('+');
  if (plus != std::string::npos && s.find_first_not_of("0123456789") == plus) {
    up = plus == 0 ? -1 : std::stoi(s.substr(0, plus));
    s.erase(0, plus + 1);
  }
  size_t last_plus = s.rfind('+');
  if (last_plus != std::string::npos && last_plus > 0 &&
      s.find_first_not_of("0123456789", last_plus + 1) == std::string::npos) {
    down = last_plus + 1 == s.size() ? -1 : std::stoi(s.substr(last_plus + 1));
    s.erase(last_plus);
  }
  if (s.empty()) return Status::Error(fmt::format("empty selector in '{}'", text));
  Result<std::set<std::string>> base = Status::Ok();
  size_t colon = s.find(':');
  if (colon != std::string::npos) {
    base = Method(s.substr(0, colon), s.substr(colon + 1));
  } else if (s.find('/') != std::string::npos || s.ends_with(".sql") || s.ends_with(".csv")) {
    base = Method("path", s);
  } else {
    base = Method("fqn", s);
  }
  if (!base.ok()) return base;
  std::set<std::string> out = *base;
  for (const auto& id : *base) {
    if (up) out.merge(Ancestors(id, up));
    if (down || at) {
      auto d = Descendants(id, at ? -1 : down);
      if (at) {
        for (const auto& x : d) out.merge(Ancestors(x));
      }
      out.merge(d);
    }
  }
  return out;
}

Result<std::set<std::string>> Graph::Evaluate(const std::vector<std::string>& args) const {
  std::set<std::string> all;
  for (const auto& arg : args) {
    for (const auto& word : SplitOn(arg, ' ')) {
      std::set<std::string> inter;
      bool first = true;
      for (const auto& part : SplitOn(word, ',')) {
        auto r = Criterion(part);
        if (!r.ok()) return r;
        if (first) {
          inter = *r;
        } else {
          std::set<std::string> both;
          std::set_intersection(inter.begin(), inter.end(), r->begin(), r->end(),
                                std::inserter(both, both.end()));
          inter = std::move(both);
        }
        first = false;
      }
      all.merge(inter);
    }
  }
  return all;
}

Result<std::set<std::string>> Graph::Select(const std::vector<std::string>& select,
                                            const std::vector<std::string>& exclude,
                                            bool with_tests) const {
  std::set<std::string> chosen;
  if (select.empty()) {
    for (const auto& [id, n] : project_->nodes) chosen.insert(id);
  } else {
    auto r = Evaluate(select);
    if (!r.ok()) return r;
    chosen = *r;
  }
  if (with_tests) {
    for (const auto& [id, n] : project_->nodes) {
      // A unit test goes with its model.
      if (n.resource_type == NodeType::kUnitTest && chosen.count(n.attached_node))
        chosen.insert(id);
      if (n.resource_type != NodeType::kTest || chosen.count(id)) continue;
      for (const auto& p : parents(id)) {
        if (chosen.count(p)) {
          chosen.insert(id);
          break;
        }
      }
    }
  }
  if (!exclude.empty()) {
    auto r = Evaluate(exclude);
    if (!r.ok()) return r;
    for (const auto& id : *r) chosen.erase(id);
  }
  return chosen;
}

}  // namespace pdv::transform
