#pragma once

// Executes selected nodes of a loaded project against PostgreSQL: compiles each node with
// dbt's execute context, runs its materialization in one transaction with its hooks,
// prints dbt-shaped progress lines and writes target/manifest.json and run_results.json.

#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "pg/connection.h"
#include "transform/context.h"
#include "transform/graph.h"
#include "transform/materialization.h"
#include "transform/node_result.h"
#include "transform/project.h"
#include "transform/reporter.h"
#include "transform/transform.h"
#include "transform/unit_test.h"

namespace pdv::transform {

class Runner {
 public:
  Runner(const Project& project, const Graph& graph, pg::Connection* conn,
         const TransformOptions& options);

  // Runs `command` over `selected` (already filtered to the command's resource types).
  RunSummary Run(const std::string& command, const std::set<std::string>& selected);
  // Compiles `id` (execute context) into its SQL, ephemeral CTEs injected; for a test, the
  // test query itself. `conn` may be null (compile without a database: is_incremental()
  // is then false).
  Result<std::string> Compile(const Node& node);

  // Writes target/manifest.json (every node, with compiled code where compiled).
  Status WriteManifest() const;

 private:
  // "begin", and the options' begin_sql.
  std::string Begin() const {
    return options_.begin_sql.empty() ? "begin" : "begin; " + options_.begin_sql;
  }
  // The fence (when held) and the commit in one query: no gap between them (pg/lease.h).
  std::string CommitSql() const {
    return options_.fence_sql.empty() ? "commit" : options_.fence_sql + "; commit";
  }
  NodeResult Execute(const Node& node);
  NodeResult ExecuteModel(const Node& node, const std::string& compiled, RelationKind existing);
  NodeResult ExecuteSeed(const Node& node);
  NodeResult ExecuteTest(const Node& node, const std::string& compiled);
  NodeResult ExecuteUnitTest(const Node& node);
  NodeResult ExecuteSnapshot(const Node& node, const std::string& compiled, RelationKind existing);
  std::vector<std::string> ExecutionOrder(const std::set<std::string>& selected) const;
  // Whether `node` is built incrementally now: an incremental model whose relation exists,
  // without --full-refresh or its full_refresh config. What is_incremental() answers too.
  bool Incremental(const Node& node, RelationKind existing) const;
  ContextOptions ExecuteOptions(const Node& node, RelationKind existing);
  Result<QueryResult> RunQuery(const std::string& sql);
  // Compile for a relation whose kind is already known (Execute looks it up once).
  Result<std::string> Compile(const Node& node, RelationKind existing);
  Result<std::string> CompileWithCtes(const Node& node, RelationKind existing,
                                      std::vector<std::string>* seen,
                                      const ContextOptions* unit_test = nullptr);
  Result<std::vector<std::string>> RenderHooks(const Node& node, const char* key,
                                               RelationKind existing);
  RelationKind ExistingKind(const std::string& schema, const std::string& name);
  // A relation's columns and their types, in order; schema "": this session's temporary
  // tables. Empty when the relation does not exist.
  Result<std::vector<TypedColumn>> ColumnsOf(const std::string& schema, const std::string& name);
  std::string WhereInSource(const Node& node, const std::string& compiled, int position) const;
  void WriteCompiled(const Node& node, const std::string& sql) const;
  Status WriteRunResults(const std::vector<NodeResult>& results, double elapsed,
                         const std::string& command) const;

  const Project& project_;
  const Graph& graph_;
  pg::Connection* conn_;
  TransformOptions options_;
  ConsoleReporter reporter_;
  std::map<std::string, std::string> compiled_;
  std::string generated_at_;
};

}  // namespace pdv::transform
