#pragma once

// A run's plan, apart from its execution: which nodes a command runs, in what order, what
// each waits for and what its failure skips. Pure functions of the project's graph and the
// selection (no database, no clock), golden-tested in plan_test.cc; the runner executes
// the plan it is given.

#include <set>
#include <string>
#include <vector>

#include "transform/graph.h"
#include "transform/project.h"

namespace pdv::transform {

struct PlanStep {
  std::string id;  // the node's unique id
  // The steps that must finish before this one starts: the selected nodes it depends on
  // (through unselected ones too), and, as in dbt build, the selected tests that vouch for
  // its inputs.
  std::set<std::string> waits_for;
  // The selected nodes skipped once this step fails or errors: the dependants of a failed
  // model (or of the model a failed test checks, or the model of a failed unit test), and
  // their tests; other tests of the same model still run.
  std::set<std::string> stops;
};

struct Plan {
  // In the order the steps start when ready: dependencies first; among the ready ones,
  // unit tests, then data tests, then the rest (so that a failing test stops its model's
  // dependants in `build`), each by unique id.
  std::vector<PlanStep> steps;
  std::vector<std::string> schemas;  // the schemas the steps build relations in, sorted
};

// The nodes `command` (seed, run, test, build, compile, freshness, docs, ls) acts on, of
// `selected`.
std::set<std::string> NodesForCommand(const Project& project, const std::string& command,
                                      const std::set<std::string>& selected);

// The plan of running `selected` (already filtered to the command's resource types).
// `graph` must be the graph of `project`.
Plan MakePlan(const Project& project, const Graph& graph, const std::set<std::string>& selected);

// The plan as text, one step per block, for golden files and debugging.
std::string FormatPlan(const Plan& plan);

}  // namespace pdv::transform
