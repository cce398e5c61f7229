#include "transform/seed_materialization.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "transform/relation_configs.h"
#include "transform/seed_file.h"

namespace pdv::transform {

NodeResult SeedMaterialization::Execute(NodeRun& run) {
  const Node& node = run.node;
  Adapter& adapter = run.adapter;
  std::ifstream in(std::filesystem::path(run.compiler.project().dir) / node.original_file_path,
                   std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::map<std::string, std::string> column_types;
  if (node.config.contains("column_types") && node.config["column_types"].is_object()) {
    for (const auto& [k, v] : node.config["column_types"].items())
      column_types[k] = v.get<std::string>();
  }
  char delimiter = ',';
  if (node.config.contains("delimiter") && !node.config["delimiter"].is_null()) {
    const nlohmann::json& d = node.config["delimiter"];
    if (!d.is_string() || d.get<std::string>().size() != 1) {
      return ErrorResult(node, node.original_file_path,
                         fmt::format("config 'delimiter' must be one character, not {}", d.dump()));
    }
    delimiter = d.get<std::string>()[0];
  }
  auto seed = SeedFile::Parse(ss.str(), node.original_file_path, column_types, delimiter);
  if (!seed.ok()) return ErrorResult(node, "", seed.message());
  RelationRef rel{node.schema, node.alias};
  RelationRef tmp{node.schema, SuffixedName(node.alias, "__dbt_tmp")};
  // quote_columns: false leaves the header's names to the warehouse's folding, as dbt does.
  bool quote = ConfigFlag(node.config, "quote_columns", true);
  std::vector<std::string> names;
  std::vector<TypedColumn> columns;
  std::vector<std::string> types =
      seed->SqlTypes([&](SeedColumnType t) { return adapter.SeedType(t); });
  for (size_t i = 0; i < seed->columns.size(); ++i) {
    names.push_back(quote ? adapter.Quote(seed->columns[i]) : seed->columns[i]);
    columns.push_back({names.back(), types[i]});
  }
  auto fail = [&](const std::string& what) {  // the guard rolls back
    return ErrorResult(node, node.original_file_path, what);
  };
  // A seed that exists as a table is emptied and reloaded in place, as on dbt-core: the
  // views on it stay. --full-refresh (or a view in its place) recreates it, and the views
  // on it go with the old one (DroppedViews).
  bool reload = run.existing == RelationKind::kTable && !run.full_refresh;
  if (reload) {
    auto existing = adapter.ColumnsOf(node.schema, node.alias);
    if (!existing.ok()) return fail(existing.message());
    std::vector<std::string> now, loaded;
    for (const auto& c : *existing) now.push_back(c.name);
    for (std::string c : seed->columns) {  // unquoted, the warehouse folds them to lower case
      if (!quote)
        std::ranges::transform(c, c.begin(), [](unsigned char ch) { return std::tolower(ch); });
      loaded.push_back(std::move(c));
    }
    if (now != loaded) {
      return ErrorResult(
          node, node.original_file_path + ":1",
          fmt::format("the seed's columns ({}) differ from those of its table {} ({}): run it "
                      "with --full-refresh to recreate the table",
                      fmt::join(loaded, ", "), rel.Quoted(), fmt::join(now, ", ")));
    }
  }
  Result<DroppedViews> dropped = DroppedViews();  // a reload drops nothing
  if (!reload) dropped = DroppedViews::Before(run);
  if (!dropped.ok()) return fail(dropped.message());
  // The seed's hooks run in its transaction, around the load, as dbt's seed
  // materialization runs them; each is rendered when it runs (a post-hook's
  // `adapter.drop_relation(this)` must come after the load).
  auto pre = run.compiler.RenderHooks(node, "pre_hook", run.existing);
  if (!pre.ok()) return ErrorResult(node, "", pre.message());
  auto txn = AdapterTransaction::Begin(adapter, run.begin_sql);
  if (!txn.ok()) return fail(txn.message());
  auto execute = [&](const std::vector<std::string>& statements) -> Status {
    for (const std::string& sql : statements) {
      StatementResult r = adapter.Execute(sql);
      if (!r.ok) return Status::Error(r.error);
    }
    return Status::Ok();
  };
  if (Status s = execute(*pre); !s.ok()) return fail(s.message());
  if (reload) {
    if (Status s = execute({adapter.TruncateTableSql(rel)}); !s.ok()) return fail(s.message());
    if (Status s = adapter.LoadCsv(rel, names, seed->CopyData()); !s.ok()) {
      return fail(s.message());
    }
  } else {
    if (Status s =
            execute({adapter.CreateSchemaSql(node.schema), adapter.CreateTableSql(tmp, columns)});
        !s.ok()) {
      return fail(s.message());
    }
    if (Status s = adapter.LoadCsv(tmp, names, seed->CopyData()); !s.ok()) return fail(s.message());
    if (Status s = execute(adapter.SwapInSql(tmp, rel, run.existing)); !s.ok()) {
      return fail(s.message());
    }
  }
  auto post = run.compiler.RenderHooks(node, "post_hook", RelationKind::kTable);
  if (!post.ok()) return ErrorResult(node, "", post.message());
  if (Status s = execute(*post); !s.ok()) return fail(s.message());
  if (Status s = ApplyRelationConfigs(run, RelationKind::kTable); !s.ok()) {
    return ErrorResult(node, "", s.message());
  }
  if (Status c = txn->Commit(run.commit_sql); !c.ok()) return fail(c.message());
  dropped->Forget(adapter);
  adapter.CacheRelation(node.schema, node.alias, RelationKind::kTable);
  NodeResult res{.unique_id = node.unique_id, .status = NodeStatus::kSuccess};
  res.rows_affected = static_cast<int64_t>(seed->rows.size());
  res.adapter_message = fmt::format("INSERT {}", seed->rows.size());
  return res;
}

}  // namespace pdv::transform
