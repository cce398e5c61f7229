#pragma once

// Each way a node is built or checked is a class: view, table, incremental (models),
// seed, snapshot, data test and unit test. The runner compiles a node, picks its class
// here, and hands it a NodeRun; the class talks to the warehouse only through the
// Adapter. Ephemeral models are compiled into their readers and never executed.

#include <memory>
#include <string>
#include <vector>

#include "transform/adapter.h"
#include "transform/context.h"
#include "transform/node_result.h"
#include "transform/project.h"

namespace pdv::transform {

// What a materialization needs of the runner that compiles: hooks, error positions mapped
// to the source, and (unit tests) a compile with overrides. Runner implements it.
class NodeCompiler {
 public:
  virtual ~NodeCompiler() = default;
  virtual const Project& project() const = 0;
  // The node's pre_hook or post_hook statements, rendered ("" ones dropped).
  virtual Result<std::vector<std::string>> RenderHooks(const Node& node, const char* key,
                                                       RelationKind existing) = 0;
  // "file:line" of a SQL error at `position` of `statement`, which holds the node's SQL.
  virtual std::string WhereInSource(const Node& node, const std::string& statement,
                                    int position) const = 0;
  // `node` compiled with a unit test's overrides (null: none), as for a first build.
  virtual Result<std::string> CompileWith(const Node& node, const ContextOptions* overrides) = 0;
};

// One node's execution. Everything is borrowed from the runner for the call.
struct NodeRun {
  const Node& node;
  Adapter& adapter;
  NodeCompiler& compiler;
  const std::string& compiled;  // the node's SQL ("" for seeds and unit tests)
  RelationKind existing;        // what the node's relation is now
  bool incremental;             // an incremental model built incrementally now
  bool full_refresh;            // --full-refresh, or the node's full_refresh config
  std::string begin_sql;        // statements right after BEGIN ("" none)
  std::string commit_sql;       // the fence and the COMMIT ("" a plain commit)
  // --event-time-start / --event-time-end: the window of a microbatch model ("" none).
  std::string event_time_start, event_time_end;
};

class Materialization {
 public:
  virtual ~Materialization() = default;
  // Builds or checks the node; every failure is in the result, with file:line where known.
  // What it builds is committed in one transaction, or nothing is.
  virtual NodeResult Execute(NodeRun& run) = 0;
};

// The class for `node`: by resource type, and for a model by its `materialized` config.
// Null, with the reason in *error, for a materialization pdv does not know.
std::unique_ptr<Materialization> MaterializationFor(const Node& node, std::string* error);
// The same, where a model's `materialized` names a {% materialization %} block of the
// project or an installed package (custom_materialization.h): that one first, as in dbt.
std::unique_ptr<Materialization> MaterializationFor(const Project& project,
                                                    const std::string& adapter_type,
                                                    const Node& node, std::string* error);

// A rebuild of an existing relation (not an incremental one) drops the views on it with
// `cascade`, as on dbt-postgres; DAG order rebuilds those of the run after it. What the
// relation cache must forget once the rebuild commits, so that a later node does not take
// a dropped view for an existing one.
class DroppedViews {
 public:
  // Asks the catalog before the rebuild (nothing when there is no relation to drop).
  static Result<DroppedViews> Before(NodeRun& run);
  // After the commit: the cache forgets them.
  void Forget(Adapter& adapter) const;

 private:
  std::vector<RelationRef> views_;
};

// A failed node's result: `message` prefixed with `where`.
NodeResult ErrorResult(const Node& node, const std::string& where, const std::string& message);

}  // namespace pdv::transform
