#include "transform/model_materializations.h"

#include <fmt/format.h>

#include "transform/contracts.h"
#include "transform/relation_configs.h"
#include "transform/schema_change.h"

namespace pdv::transform {

NodeResult ModelMaterialization::Execute(NodeRun& run) {
  const Node& node = run.node;
  NodeResult res{.unique_id = node.unique_id};
  auto pre = run.compiler.RenderHooks(node, "pre_hook", run.existing);
  auto post = run.compiler.RenderHooks(node, "post_hook", run.existing);
  if (!pre.ok() || !post.ok())
    return ErrorResult(node, "", !pre.ok() ? pre.message() : post.message());
  auto body = Plan(run);
  if (!body.ok()) return ErrorResult(node, "", body.message());
  auto dropped = DroppedViews::Before(run);
  if (!dropped.ok()) return ErrorResult(node, node.original_file_path, dropped.message());
  auto txn = AdapterTransaction::Begin(run.adapter, run.begin_sql);
  if (!txn.ok()) return ErrorResult(node, node.original_file_path, txn.message());
  std::vector<std::string> statements(pre->begin(), pre->end());
  size_t main_index = statements.size() + body->main;
  size_t reported = statements.size() + body->reported;
  statements.insert(statements.end(), body->statements.begin(), body->statements.end());
  statements.insert(statements.end(), post->begin(), post->end());
  for (size_t i = 0; i < statements.size(); ++i) {
    StatementResult r = run.adapter.Execute(statements[i]);
    if (!r.ok) {  // the guard rolls back
      std::string where = i == main_index
                              ? run.compiler.WhereInSource(node, statements[i], r.position)
                              : node.original_file_path;
      res = ErrorResult(node, where, r.error);
      if (r.connection_lost) res.message += " [connection lost]";
      return res;
    }
    if (i == reported) {
      res.adapter_message = r.command_status;
      res.rows_affected = r.rows;
    }
  }
  if (Status s = ApplyRelationConfigs(run, body->built); !s.ok()) {
    return ErrorResult(node, "", s.message());
  }
  if (Status s = txn->Commit(run.commit_sql); !s.ok()) {
    res = ErrorResult(node, node.original_file_path, s.message());
    if (run.adapter.ConnectionLost(s)) res.message += " [connection lost]";
    return res;
  }
  dropped->Forget(run.adapter);
  run.adapter.CacheRelation(node.schema, node.alias, body->built);
  res.status = NodeStatus::kSuccess;
  return res;
}

Result<ModelMaterialization::Body> ViewMaterialization::Plan(NodeRun& run) {
  Body body{.main = 1, .reported = 1, .built = RelationKind::kView};
  if (ContractEnforced(run.node)) {  // a view's contract is its columns (no constraints)
    if (Status s = CheckContract(run.adapter, run.node, run.compiled); !s.ok()) return s;
  }
  body.statements =
      run.adapter.ReplaceRelationSql({run.node.schema, run.node.alias}, run.compiled,
                                     RelationKind::kView, run.existing, nlohmann::json());
  return body;
}

Result<ModelMaterialization::Body> TableMaterialization::Plan(NodeRun& run) {
  const Node& node = run.node;
  Body body{.main = 1, .reported = 1, .built = RelationKind::kTable};
  body.statements = run.adapter.ReplaceRelationSql(
      {node.schema, node.alias}, run.compiled, RelationKind::kTable, run.existing,
      node.config.contains("indexes") ? node.config["indexes"] : nlohmann::json());
  if (ContractEnforced(node)) {
    // dbt-postgres: the declared columns with their constraints, then the model's rows.
    if (Status s = CheckContract(run.adapter, node, run.compiled); !s.ok()) return s;
    RelationRef tmp{node.schema, SuffixedName(node.alias, "__dbt_tmp")};
    auto contract = ContractTableSql(run.compiler.project(), node, tmp, run.compiled);
    if (!contract.ok()) return contract.status();
    body.statements[1] = (*contract)[0];
    body.statements.insert(body.statements.begin() + 2, (*contract)[1]);
    body.main = body.reported = 2;
  }
  return body;
}

Result<ModelMaterialization::Body> IncrementalMaterialization::Plan(NodeRun& run) {
  if (!run.incremental) return TableMaterialization::Plan(run);
  const Node& node = run.node;
  RelationRef rel{node.schema, node.alias};
  if (run.existing == RelationKind::kView) {
    return Status::Error(fmt::format(
        "{} is a view; run with --full-refresh to rebuild it as a table", rel.Quoted()));
  }
  auto cols = run.adapter.ColumnsOf(node.schema, node.alias);
  if (!cols.ok()) return cols.status();
  if (ContractEnforced(node)) {
    if (Status s = CheckContract(run.adapter, node, run.compiled); !s.ok()) return s;
  }
  auto change = PlanSchemaChange(run.adapter, node, run.compiled, *cols);
  if (!change.ok()) return change.status();
  std::string error;
  Body body{.main = change->alters.size(), .built = RelationKind::kTable};
  body.statements = change->alters;
  std::vector<std::string> merge = run.adapter.IncrementalSql(
      rel, run.compiled, node.config.value("incremental_strategy", ""),
      UniqueKeyColumns(node.config.value("unique_key", nlohmann::json())), change->columns, &error);
  if (!error.empty()) return Status::Error(fmt::format("{}: {}", node.original_file_path, error));
  body.statements.insert(body.statements.end(), merge.begin(), merge.end());
  body.reported = body.statements.size() - 1;  // the merge, not the staging of the new rows
  return body;
}

}  // namespace pdv::transform
