// The plan of a run (plan.h): order, waits and skips, from the graph alone.

#include "transform/plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <utility>

namespace pdv::transform {
namespace {

// Dependencies first; among the nodes ready to run, tests before models (so that a failing
// test stops its model's dependants in `build`), then by unique id. Ordered over the whole
// graph (a selected model may depend on an unselected one through an ephemeral), then
// filtered to the selection.
std::vector<std::string> ExecutionOrder(const Project& project, const Graph& graph,
                                        const std::set<std::string>& selected) {
  std::map<std::string, int> pending;
  for (const auto& [id, n] : project.nodes)
    pending[id] = static_cast<int>(graph.parents(id).size());
  auto rank = [&](const std::string& id) {
    NodeType type = project.nodes.at(id).resource_type;
    return std::make_pair(type == NodeType::kUnitTest ? 0 : type == NodeType::kTest ? 1 : 2, id);
  };
  std::set<std::pair<int, std::string>> ready;
  for (const auto& [id, n] : pending) {
    if (n == 0) ready.insert(rank(id));
  }
  std::vector<std::string> order;
  while (!ready.empty()) {
    std::string id = ready.begin()->second;
    ready.erase(ready.begin());
    if (selected.count(id)) order.push_back(id);
    for (const auto& c : graph.children(id)) {
      if (--pending[c] == 0) ready.insert(rank(c));
    }
  }
  return order;
}

// The selected nodes `id` depends on, looking through unselected ones.
std::set<std::string> SelectedUpstream(const Graph& graph, const std::string& id,
                                       const std::set<std::string>& chosen) {
  std::set<std::string> out;
  std::vector<std::string> stack(graph.parents(id).begin(), graph.parents(id).end());
  std::set<std::string> seen;
  while (!stack.empty()) {
    std::string p = stack.back();
    stack.pop_back();
    if (!seen.insert(p).second) continue;
    if (chosen.count(p)) {
      out.insert(p);
    } else {
      stack.insert(stack.end(), graph.parents(p).begin(), graph.parents(p).end());
    }
  }
  return out;
}

// What a failure of `id` skips, over the whole graph: the non-test dependants of the
// failed model, of the model a failed test checks, or the model of a failed unit test and
// its dependants. Then the selected ones of those, and the selected tests of a skipped or
// the failed node.
std::set<std::string> Stops(const Project& project, const Graph& graph, const std::string& id,
                            const std::set<std::string>& chosen) {
  const Node& node = project.nodes.at(id);
  std::set<std::string> skip;
  std::set<std::string> roots{id};
  if (node.resource_type == NodeType::kTest) roots = graph.parents(id);
  if (node.resource_type == NodeType::kUnitTest) {
    roots = {node.attached_node};
    skip.insert(node.attached_node);
  }
  for (const auto& root : roots) {
    for (const auto& d : graph.Descendants(root)) {
      if (project.nodes.at(d).resource_type != NodeType::kTest) skip.insert(d);
    }
  }
  std::set<std::string> out;
  for (const auto& c : chosen) {
    bool stopped = skip.count(c) > 0;
    if (!stopped && IsCheck(project.nodes.at(c).resource_type)) {
      const auto& parents = graph.parents(c);
      stopped = std::any_of(parents.begin(), parents.end(),
                            [&](const std::string& p) { return p == id || skip.count(p) > 0; });
    }
    if (stopped) out.insert(c);
  }
  return out;
}

}  // namespace

std::set<std::string> NodesForCommand(const Project& project, const std::string& command,
                                      const std::set<std::string>& selected) {
  std::set<std::string> out;
  for (const auto& id : selected) {
    const Node& n = project.nodes.at(id);
    const NodeType type = n.resource_type;
    const bool runnable_model = type == NodeType::kModel && n.Builds();
    bool take = (command == "seed" && type == NodeType::kSeed) ||
                (command == "run" && runnable_model) || (command == "test" && IsCheck(type)) ||
                (command == "snapshot" && type == NodeType::kSnapshot) ||
                (command == "build" && (n.Builds() || IsCheck(type))) ||
                (command == "compile" && (type == NodeType::kModel || type == NodeType::kTest)) ||
                (command == "freshness" && type == NodeType::kSource) ||
                (command == "docs" && type != NodeType::kUnitTest) ||
                (command == "show" && (type == NodeType::kModel || type == NodeType::kSeed ||
                                       type == NodeType::kSnapshot || type == NodeType::kTest)) ||
                command == "ls";
    if (take) out.insert(id);
  }
  return out;
}

Plan MakePlan(const Project& project, const Graph& graph, const std::set<std::string>& selected) {
  Plan plan;
  std::vector<std::string> order = ExecutionOrder(project, graph, selected);
  std::set<std::string> chosen(order.begin(), order.end());
  std::set<std::string> schemas;
  // What each selected node waits for: the selected nodes it depends on (through
  // unselected ones), and, as in dbt build, selected tests that vouch for its inputs (unit
  // tests of itself; data tests of its ancestors whose every input is one of its
  // ancestors), so that a failing test stops it before it starts. A test that also reads a
  // node outside its ancestry does not hold it back (dbt's add_test_edges): a snapshot of
  // staging need not wait for a test comparing staging with a mart built from it.
  std::map<std::string, std::vector<std::string>> tests_of;  // node -> its selected tests
  for (const auto& id : order) {
    const Node& n = project.nodes.at(id);
    if (n.resource_type == NodeType::kUnitTest) tests_of[n.attached_node].push_back(id);
    if (n.resource_type == NodeType::kTest) {
      for (const auto& p : graph.parents(id)) tests_of[p].push_back(id);
    }
  }
  for (const auto& id : order) {
    const Node& n = project.nodes.at(id);
    if (n.Builds()) schemas.insert(n.schema);
    PlanStep step{.id = id,
                  .waits_for = SelectedUpstream(graph, id, chosen),
                  .stops = Stops(project, graph, id, chosen)};
    if (!IsCheck(n.resource_type)) {
      const std::set<std::string> upstream = graph.Ancestors(id);
      for (const auto& p : upstream) {
        auto tests = tests_of.find(p);
        if (tests == tests_of.end()) continue;
        for (const auto& t : tests->second) {
          if (project.nodes.at(t).resource_type != NodeType::kTest) continue;
          const auto& inputs = graph.parents(t);
          if (std::all_of(inputs.begin(), inputs.end(),
                          [&](const std::string& i) { return upstream.count(i) > 0; })) {
            step.waits_for.insert(t);
          }
        }
      }
      for (const auto& t : tests_of[id]) {
        if (project.nodes.at(t).resource_type == NodeType::kUnitTest) step.waits_for.insert(t);
      }
    }
    plan.steps.push_back(std::move(step));
  }
  plan.schemas.assign(schemas.begin(), schemas.end());
  return plan;
}

std::string FormatPlan(const Plan& plan) {
  auto list = [](const std::set<std::string>& ids) {
    if (ids.empty()) return std::string(" -\n");
    std::string out = "\n";
    for (const auto& id : ids) out += "    " + id + "\n";
    return out;
  };
  std::string out =
      fmt::format("{} steps; schemas: {}\n", plan.steps.size(), fmt::join(plan.schemas, ", "));
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    const PlanStep& step = plan.steps[i];
    out += fmt::format("\n{} {}\n  waits for:{}  a failure skips:{}", i + 1, step.id,
                       list(step.waits_for), list(step.stops));
  }
  return out;
}

}  // namespace pdv::transform
