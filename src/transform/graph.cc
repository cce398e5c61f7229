#include "transform/graph.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>

#include "transform/selector.h"

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

}  // namespace

std::set<std::string> Graph::Ancestors(const std::string& id, int depth) const {
  return Walk(parents_, id, depth);
}

std::set<std::string> Graph::Descendants(const std::string& id, int depth) const {
  return Walk(children_, id, depth);
}

Result<std::set<std::string>> Graph::Select(const std::vector<std::string>& select,
                                            const std::vector<std::string>& exclude,
                                            bool with_tests) const {
  auto spec = ParseCliSelection(select, exclude);
  if (!spec.ok()) return spec.status();
  Selector selector(
      *project_, *this,
      {.indirect = with_tests ? IndirectSelection::kEager : IndirectSelection::kEmpty});
  return selector.Select(*spec);
}

}  // namespace pdv::transform
