#include "transform/microbatch.h"

#include <fmt/format.h>

#include <optional>

#include "transform/context.h"

namespace pdv::transform {

using jinja::Value;

namespace {

std::string Literal(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::string ConfigText(const nlohmann::json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

// The batches this run builds, or an error naming the config or flag at fault.
Result<std::vector<Batch>> Batches(NodeRun& run, const std::string& batch_size) {
  const Node& node = run.node;
  std::string step = fmt::format("interval '1 {}'", batch_size);
  std::string now = "(now() at time zone 'UTC')";
  std::string start, end;
  if (!run.event_time_start.empty()) {
    start = fmt::format("{}::timestamp", Literal(run.event_time_start));
  } else if (run.incremental) {
    int64_t lookback = 1;
    if (auto it = node.config.find("lookback"); it != node.config.end()) {
      if (!it->is_number_integer() || it->get<int64_t>() < 0)
        return Status::Error(
            fmt::format("{}: lookback must be a whole number of batches", node.original_file_path));
      lookback = it->get<int64_t>();
    }
    start = fmt::format("date_trunc('{}', {}) - {} * {}", batch_size, now, lookback, step);
  } else {
    std::string begin = ConfigText(node.config, "begin");
    if (begin.empty())
      return Status::Error(
          fmt::format("{}: a microbatch model needs a `begin` config (the first batch's time)",
                      node.original_file_path));
    start = fmt::format("{}::timestamp", Literal(begin));
  }
  end = run.event_time_end.empty() ? fmt::format("date_trunc('{}', {}) + {}", batch_size, now, step)
                                   : fmt::format("{}::timestamp", Literal(run.event_time_end));
  auto rows = run.adapter.QueryText(BatchesSql(start, end, batch_size));
  if (!rows.ok())
    return Status::Error(
        fmt::format("{}: the batches' window (begin, --event-time-start, "
                    "--event-time-end): {}",
                    node.original_file_path, rows.message()));
  std::vector<Batch> out;
  for (const auto& r : *rows) out.push_back({r[0].value_or(""), r[1].value_or("")});
  return out;
}

}  // namespace

std::string BatchesSql(const std::string& start_sql, const std::string& end_sql,
                       const std::string& batch_size) {
  return fmt::format(
      "select to_char(b, 'YYYY-MM-DD HH24:MI:SS'), to_char(least(b + w.step, w.e), "
      "'YYYY-MM-DD HH24:MI:SS') from (select date_trunc('{0}', {1}) as s, ({2})::timestamp "
      "as e, interval '1 {0}' as step) w, generate_series(w.s, w.e - interval '1 microsecond', "
      "w.step) b order by b",
      batch_size, start_sql, end_sql);
}

std::string EventTimeFiltered(const std::string& relation, const std::string& event_time,
                              const std::string& identifier, const Batch& batch) {
  return fmt::format(
      "(select * from {} where {} >= '{}+00:00' and {} < '{}+00:00') _dbt_et_filter_subq_{}",
      relation, event_time, batch.start, event_time, batch.end, identifier);
}

NodeResult MicrobatchMaterialization::Execute(NodeRun& run) {
  const Node& node = run.node;
  const Project& project = run.compiler.project();
  const std::string event_time = ConfigText(node.config, "event_time");
  const std::string batch_size = ConfigText(node.config, "batch_size");
  const auto unique_key = UniqueKeyColumns(node.config.value("unique_key", nlohmann::json()));
  if (event_time.empty())
    return ErrorResult(node, node.original_file_path,
                       "a microbatch model needs an `event_time` config (its time column)");
  if (batch_size != "hour" && batch_size != "day" && batch_size != "month" && batch_size != "year")
    return ErrorResult(
        node, node.original_file_path,
        fmt::format("batch_size '{}' is none of hour, day, month, year", batch_size));
  if (unique_key.empty())
    return ErrorResult(node, node.original_file_path,
                       "dbt-postgres 'microbatch' requires a `unique_key` config");
  if (run.existing == RelationKind::kView && run.incremental)
    return ErrorResult(node, node.original_file_path,
                       fmt::format("{} is a view; run with --full-refresh to rebuild it as a "
                                   "table",
                                   RelationRef{node.schema, node.alias}.Quoted()));
  auto batches = Batches(run, batch_size);
  if (!batches.ok()) return ErrorResult(node, "", batches.message());
  auto pre = run.compiler.RenderHooks(node, "pre_hook", run.existing);
  auto post = run.compiler.RenderHooks(node, "post_hook", run.existing);
  if (!pre.ok() || !post.ok())
    return ErrorResult(node, "", !pre.ok() ? pre.message() : post.message());
  auto dropped = DroppedViews::Before(run);
  if (!dropped.ok()) return ErrorResult(node, node.original_file_path, dropped.message());

  RelationRef rel{node.schema, node.alias};
  bool exists = run.incremental;  // else the first batch (re)builds the table
  NodeResult res{.unique_id = node.unique_id};
  int64_t rows = 0;
  for (size_t i = 0; i < batches->size(); ++i) {
    const Batch& batch = (*batches)[i];
    std::string which =
        fmt::format("batch {} of {} ({} to {})", i + 1, batches->size(), batch.start, batch.end);
    // The upstream nodes with an event_time read through this batch's window.
    ContextOptions overrides;
    for (const auto& id : node.depends_on) {
      auto up = project.nodes.find(id);
      if (up == project.nodes.end()) continue;
      std::string column = ConfigText(up->second.config, "event_time");
      if (column.empty()) continue;
      const Node& u = up->second;
      const std::string& identifier = u.resource_type == NodeType::kSource ? u.identifier : u.alias;
      Value relation = RelationValue(u.database, u.schema, identifier);
      relation.dict().text = EventTimeFiltered(*relation.dict().text, column, identifier, batch);
      overrides.relation_overrides[id] = relation;
    }
    overrides.macro_overrides["is_incremental"] = Value(exists);
    auto sql = run.compiler.CompileWith(node, &overrides);
    if (!sql.ok()) return ErrorResult(node, "", fmt::format("{}: {}", which, sql.message()));
    std::vector<std::string> statements;
    if (i == 0) statements.insert(statements.end(), pre->begin(), pre->end());
    size_t reported = 0;
    if (!exists) {
      auto build = run.adapter.ReplaceRelationSql(
          rel, *sql, RelationKind::kTable, run.existing,
          node.config.contains("indexes") ? node.config["indexes"] : nlohmann::json());
      reported = statements.size() + 1;
      statements.insert(statements.end(), build.begin(), build.end());
    } else {
      auto cols = run.adapter.ColumnsOf(node.schema, node.alias);
      if (!cols.ok()) return ErrorResult(node, node.original_file_path, cols.message());
      std::vector<std::string> columns;
      for (const auto& c : *cols) columns.push_back(c.name);
      std::string error;
      auto merge = run.adapter.IncrementalSql(rel, *sql, "merge", unique_key, columns, &error);
      if (!error.empty()) return ErrorResult(node, node.original_file_path, error);
      statements.insert(statements.end(), merge.begin(), merge.end());
      reported = statements.size() - 1;
    }
    if (i + 1 == batches->size()) statements.insert(statements.end(), post->begin(), post->end());

    auto txn = AdapterTransaction::Begin(run.adapter, run.begin_sql);
    if (!txn.ok()) return ErrorResult(node, node.original_file_path, txn.message());
    for (size_t s = 0; s < statements.size(); ++s) {
      StatementResult r = run.adapter.Execute(statements[s]);
      if (!r.ok) {  // the guard rolls back this batch; the ones before it stay
        res = ErrorResult(node, node.original_file_path, fmt::format("{}: {}", which, r.error));
        if (r.connection_lost) res.message += " [connection lost]";
        return res;
      }
      if (s == reported && r.rows > 0) rows += r.rows;
    }
    if (Status s = txn->Commit(run.commit_sql); !s.ok()) {
      res = ErrorResult(node, node.original_file_path, fmt::format("{}: {}", which, s.message()));
      if (run.adapter.ConnectionLost(s)) res.message += " [connection lost]";
      return res;
    }
    if (!exists) {
      dropped->Forget(run.adapter);
      run.adapter.CacheRelation(node.schema, node.alias, RelationKind::kTable);
      exists = true;
    }
  }
  res.status = NodeStatus::kSuccess;
  res.adapter_message =
      fmt::format("{} batch{}", batches->size(), batches->size() == 1 ? "" : "es");
  res.rows_affected = rows;
  return res;
}

}  // namespace pdv::transform
