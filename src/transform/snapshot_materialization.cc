#include "transform/snapshot_materialization.h"

#include <fmt/format.h>

#include <set>

#include "transform/relation_configs.h"
#include "transform/snapshot.h"

namespace pdv::transform {

NodeResult SnapshotMaterialization::Execute(NodeRun& run) {
  const Node& node = run.node;
  Adapter& adapter = run.adapter;
  auto fail = [&](const std::string& what) {  // the guard rolls back
    return ErrorResult(node, node.original_file_path, what);
  };
  auto config = ReadSnapshotConfig(node.config);
  if (!config.ok()) return fail(config.message());
  if (run.existing == RelationKind::kView) return fail(node.RelationName() + " is a view");
  RelationRef rel{node.schema, node.alias};
  StatementResult now = adapter.Execute(adapter.NowSql());
  if (!now.ok) return fail(now.error);
  std::string now_sql = fmt::format("'{}'::timestamp", now.first_value());
  std::vector<std::string> statements;
  auto txn = AdapterTransaction::Begin(adapter, run.begin_sql);
  if (!txn.ok()) return fail(txn.message());
  if (run.existing == RelationKind::kNone) {
    statements = adapter.SnapshotCreateSql(rel, run.compiled, *config, now_sql);
  } else {
    if (StatementResult r = adapter.Execute(adapter.SnapshotStageSql(run.compiled)); !r.ok)
      return fail(r.error);
    auto staged = adapter.ColumnsOf("", kSnapshotSourceTable);
    auto have = adapter.ColumnsOf(rel.schema, rel.identifier);
    if (!staged.ok() || !have.ok()) return fail(!staged.ok() ? staged.message() : have.message());
    std::set<std::string> present;
    for (const auto& c : *have) present.insert(c.name);
    std::vector<std::string> source_columns;
    for (const TypedColumn& column : *staged) {
      source_columns.push_back(column.name);
      // A column the query gained is added, as dbt does; the old rows hold null in it.
      if (!present.count(column.name)) {
        statements.push_back(fmt::format("alter table {} add column {} {}", rel.Quoted(),
                                         adapter.Quote(column.name), column.type));
      }
    }
    if (config->hard_deletes == SnapshotConfig::HardDeletes::kNewRecord &&
        !present.count("dbt_is_deleted")) {
      statements.push_back(fmt::format(
          "alter table {} add column dbt_is_deleted text default 'False'", rel.Quoted()));
    }
    auto merge = adapter.SnapshotMergeSql(rel, *config, source_columns, now_sql);
    statements.insert(statements.end(), merge.begin(), merge.end());
  }
  for (const auto& sql : statements) {
    StatementResult r = adapter.Execute(sql);
    if (!r.ok) {
      bool holds_query = r.position > 0 && sql.find(run.compiled) != std::string::npos;
      return fail(holds_query
                      ? r.error + " (in " + run.compiler.WhereInSource(node, sql, r.position) + ")"
                      : r.error);
    }
  }
  if (Status s = ApplyRelationConfigs(run, RelationKind::kTable); !s.ok()) return fail(s.message());
  if (Status c = txn->Commit(run.commit_sql); !c.ok()) return fail(c.message());
  adapter.CacheRelation(node.schema, node.alias, RelationKind::kTable);
  NodeResult res{.unique_id = node.unique_id, .status = NodeStatus::kSuccess};
  res.adapter_message = run.existing == RelationKind::kNone ? "CREATE TABLE" : "MERGE";
  return res;
}

}  // namespace pdv::transform
