#pragma once

// Executes selected nodes of a loaded project against PostgreSQL: compiles each node with
// dbt's execute context, runs its materialization in one transaction with its hooks,
// prints dbt-shaped progress lines and writes target/manifest.json and run_results.json.

#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "transform/adapter.h"
#include "transform/context.h"
#include "transform/graph.h"
#include "transform/materializations.h"
#include "transform/node_result.h"
#include "transform/plan.h"
#include "transform/project.h"
#include "transform/reporter.h"
#include "transform/transform.h"
#include "transform/unit_test.h"

namespace pdv::transform {

class Runner final : public NodeCompiler {
 public:
  // `adapter` (borrowed, may be null: compile without a database, where is_incremental()
  // is false) is used by this runner's thread only; a run's extra threads clone it.
  Runner(const Project& project, const Graph& graph, Adapter* adapter,
         const TransformOptions& options);

  // Runs `command` over `selected` (already filtered to the command's resource types).
  RunSummary Run(const std::string& command, const std::set<std::string>& selected);
  // Compiles `id` (execute context) into its SQL, ephemeral CTEs injected; for a test, the
  // test query itself.
  Result<std::string> Compile(const Node& node);

  // The execute-mode context options for rendering `node` (its relation `existing`):
  // run_query() and the adapter on this runner's adapter, log() lines to its reporter.
  // What run-operation and show render with too.
  ContextOptions ExecuteOptions(const Node& node, RelationKind existing);

  // Where this runner's lines and warnings go.
  const ConsoleReporter& reporter() const { return reporter_; }

  // Writes target/manifest.json (every node, with compiled code where compiled).
  Status WriteManifest() const;

  // NodeCompiler, for the materializations.
  const Project& project() const override { return project_; }
  Result<std::vector<std::string>> RenderHooks(const Node& node, const char* key,
                                               RelationKind existing) override;
  std::string WhereInSource(const Node& node, const std::string& statement,
                            int position) const override;
  Result<std::string> CompileWith(const Node& node, const ContextOptions* overrides) override;

 private:
  NodeResult Execute(const Node& node);
  // The runners a run's steps go to: this one first, then one per extra thread with the
  // adapter it owns (declared first, so destroyed last).
  struct Workers {
    std::vector<std::unique_ptr<Adapter>> adapters;
    std::vector<std::unique_ptr<Runner>> extra;
    std::vector<Runner*> all;
  };
  void AddWorkers(size_t steps, Workers* workers);
  // Lists the plan's schemas into the relation cache; with `concurrent` workers, makes
  // them first (warnings, not failures: a node's own statement will say what is wrong).
  void PrepareSchemas(const Plan& plan, bool concurrent);
  // Runs `plan` on `workers`, counting into `summary`, `kinds` and `problems`; the results
  // in the order they finished.
  std::vector<NodeResult> ExecutePlan(const Plan& plan, const std::vector<Runner*>& workers,
                                      RunSummary* summary, std::map<std::string, int>* kinds,
                                      std::vector<std::pair<const Node*, NodeResult>>* problems);
  // Whether `node` is built incrementally now: an incremental model whose relation exists,
  // without --full-refresh or its full_refresh config. What is_incremental() answers too.
  bool Incremental(const Node& node, RelationKind existing) const;
  Result<QueryResult> RunQuery(const std::string& sql);
  // Compile for a relation whose kind is already known (Execute looks it up once).
  Result<std::string> Compile(const Node& node, RelationKind existing);
  Result<std::string> CompileWithCtes(const Node& node, RelationKind existing,
                                      std::vector<std::string>* seen,
                                      const ContextOptions* unit_test = nullptr);
  RelationKind ExistingKind(const Node& node);
  void WriteCompiled(const Node& node, const std::string& sql) const;
  Status WriteRunResults(const std::vector<NodeResult>& results, double elapsed,
                         const std::string& command) const;

  const Project& project_;
  const Graph& graph_;
  Adapter* adapter_;
  TransformOptions options_;
  ConsoleReporter reporter_;
  std::map<std::string, std::string> compiled_;
  std::string generated_at_;
};

}  // namespace pdv::transform
