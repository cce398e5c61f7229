#pragma once

// The project's DAG (edges from ref() and source()). Node selection is transform/selector.h;
// Select() here is its CLI form.

#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "transform/project.h"

namespace pdv::transform {

class Graph {
 public:
  // Fails on a cycle, naming it ("model.p.a --> model.p.b --> model.p.a").
  static Result<Graph> Build(const Project& project);

  // Every node, dependencies before dependants (ties by unique id).
  const std::vector<std::string>& order() const { return order_; }
  const std::set<std::string>& parents(const std::string& id) const;
  const std::set<std::string>& children(const std::string& id) const;
  // Ancestors or descendants within `depth` edges (-1: all).
  std::set<std::string> Ancestors(const std::string& id, int depth = -1) const;
  std::set<std::string> Descendants(const std::string& id, int depth = -1) const;

  // dbt's --select/--exclude (selector.h). An empty `select` means every node. Tests whose
  // parent is selected are added (dbt's eager indirect selection) when `with_tests`; the
  // excluded nodes' tests always leave with them.
  Result<std::set<std::string>> Select(const std::vector<std::string>& select,
                                       const std::vector<std::string>& exclude,
                                       bool with_tests) const;

 private:
  const Project* project_ = nullptr;
  std::vector<std::string> order_;
  std::map<std::string, std::set<std::string>> parents_, children_;
};

}  // namespace pdv::transform
