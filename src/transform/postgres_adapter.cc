#include "transform/postgres_adapter.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

namespace pdv::transform {

using Clock = std::chrono::steady_clock;

namespace {

// A text[] literal of `values` ({"a","b\"c"}), for `= any($1::text[])`.
std::string TextArray(const std::vector<std::string>& values) {
  std::string list = "{";
  for (const auto& v : values) {
    list += (list.size() > 1 ? "," : "") + std::string("\"");
    for (char c : v) list += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
    list += "\"";
  }
  return list + "}";
}

}  // namespace

PostgresAdapter::PostgresAdapter(pg::Connection& conn, std::string conninfo)
    : conn_(&conn), conninfo_(std::move(conninfo)), cache_(std::make_shared<RelationCache>()) {}

PostgresAdapter::PostgresAdapter(std::unique_ptr<pg::Connection> owned, std::string conninfo,
                                 std::shared_ptr<RelationCache> cache)
    : owned_(std::move(owned)),
      conn_(owned_.get()),
      conninfo_(std::move(conninfo)),
      cache_(std::move(cache)) {}

Result<std::unique_ptr<Adapter>> PostgresAdapter::Clone() {
  auto c = pg::Connection::Connect(conninfo_);
  if (!c.ok()) return c.status();
  return std::unique_ptr<Adapter>(
      new PostgresAdapter(std::make_unique<pg::Connection>(std::move(*c)), conninfo_, cache_));
}

StatementResult PostgresAdapter::Execute(const std::string& sql) {
  StatementResult r;
  // PDV_TRANSFORM_TRACE=1: each statement's duration on stderr (profiling a project).
  static const bool trace = std::getenv("PDV_TRANSFORM_TRACE") != nullptr;
  auto started = Clock::now();
  pg::SqlError error;
  auto res = conn_->Exec(sql, &error);
  if (trace) {
    std::string brief = sql.substr(0, 120);
    std::replace(brief.begin(), brief.end(), '\n', ' ');
    fmt::print(stderr, "trace: {:8.2f} ms  {}\n",
               std::chrono::duration<double, std::milli>(Clock::now() - started).count(), brief);
  }
  if (res.ok()) {
    r.command_status = res->command_status();
    std::string tuples = res->command_tuples();
    if (!tuples.empty()) r.rows = std::atoll(tuples.c_str());
    if (res->rows() > 0) {
      for (int c = 0; c < res->columns(); ++c) r.first_row.push_back(res->str(0, c));
    }
  } else {
    r.ok = false;
    r.error = error.primary;
    while (!r.error.empty() && (r.error.back() == '\n' || r.error.back() == ' '))
      r.error.pop_back();
    if (!error.detail.empty()) r.error += fmt::format(" ({})", error.detail);
    r.position = error.position;
    r.connection_lost = error.sqlstate == pg::kConnectionLost || conn_->broken();
  }
  return r;
}

// The result as dbt's agate table, reduced to what templates use: .rows (a list of lists)
// and .columns (each with .name and .values()); ints, floats and booleans typed, the rest
// text, NULL as none.
Result<QueryResult> PostgresAdapter::Query(const std::string& sql) {
  auto r = conn_->Exec(sql);
  if (!r.ok()) return r.status();
  const pg::Result& res = *r;
  auto cell = [&](int row, int col) -> jinja::Value {
    if (res.is_null(row, col)) return jinja::Value();
    std::string text = res.str(row, col);
    switch (res.column_type(col)) {
      case 20:  // int8
      case 21:  // int2
      case 23:  // int4
        return jinja::Value(static_cast<int64_t>(std::stoll(text)));
      case 700:   // float4
      case 701:   // float8
      case 1700:  // numeric
        return jinja::Value(std::stod(text));
      case 16:  // bool
        return jinja::Value(text == "t");
      default:
        return jinja::Value(text);
    }
  };
  std::vector<std::string> names;
  for (int c = 0; c < res.columns(); ++c) names.emplace_back(res.column_name(c));
  // Rows and columns are dicts by column name that are also sequences, as agate's are.
  jinja::ValueList rows;
  for (int i = 0; i < res.rows(); ++i) {
    jinja::ValueDict row;
    row.sequence = std::make_shared<jinja::ValueList>();
    for (int c = 0; c < res.columns(); ++c) {
      jinja::Value v = cell(i, c);
      row.Set(names[static_cast<size_t>(c)], v);
      row.sequence->push_back(std::move(v));
    }
    rows.emplace_back(std::move(row));
  }
  jinja::ValueDict columns;
  columns.sequence = std::make_shared<jinja::ValueList>();
  for (int c = 0; c < res.columns(); ++c) {
    jinja::ValueList values;
    for (int i = 0; i < res.rows(); ++i) values.push_back(cell(i, c));
    jinja::ValueDict column;
    column.Set("name", jinja::Value(names[static_cast<size_t>(c)]));
    column.Set("values", jinja::Value(jinja::Function(
                             [values](const jinja::Arguments&) { return jinja::Value(values); })));
    jinja::Value col(std::move(column));
    columns.Set(names[static_cast<size_t>(c)], col);
    columns.sequence->push_back(std::move(col));
  }
  jinja::ValueList column_names(names.begin(), names.end());
  jinja::ValueDict table;
  table.sequence = std::make_shared<jinja::ValueList>(rows);  // `for row in table`
  table.Set("rows", jinja::Value(std::move(rows)));
  table.Set("columns", jinja::Value(std::move(columns)));
  table.Set("column_names", jinja::Value(std::move(column_names)));
  return QueryResult{jinja::Value(std::move(table)), res.command_status()};
}

Result<Adapter::TextRows> PostgresAdapter::QueryText(const std::string& sql) {
  auto r = conn_->Exec(sql);
  if (!r.ok()) return r.status();
  TextRows rows(static_cast<size_t>(r->rows()));
  for (int i = 0; i < r->rows(); ++i) {
    for (int c = 0; c < r->columns(); ++c) {
      rows[static_cast<size_t>(i)].push_back(r->is_null(i, c) ? std::nullopt
                                                              : std::optional(r->str(i, c)));
    }
  }
  return rows;
}

Status PostgresAdapter::LoadCsv(const RelationRef& relation,
                                const std::vector<std::string>& columns, std::string_view csv) {
  std::string names;
  for (const auto& c : columns) names += (names.empty() ? "" : ", ") + c;
  Status copy = conn_->CopyBegin(
      fmt::format("copy {} ({}) from stdin with (format csv)", relation.Quoted(), names));
  if (copy.ok()) copy = conn_->CopyPut(csv);
  if (copy.ok()) copy = conn_->CopyEnd();
  return copy;
}

Status PostgresAdapter::BeginTransaction(const std::string& begin_sql) {
  transaction_.reset();
  auto t = pg::Transaction::Begin(*conn_, begin_sql.empty() ? "begin" : "begin; " + begin_sql);
  if (!t.ok()) return t.status();
  transaction_.emplace(std::move(*t));
  return Status::Ok();
}

Status PostgresAdapter::CommitTransaction(const std::string& commit_sql) {
  if (!transaction_) return Status::Error("postgres: COMMIT outside a transaction");
  Status s = transaction_->Commit(commit_sql.empty() ? "commit" : commit_sql);
  transaction_.reset();
  return s;
}

RelationKind PostgresAdapter::ExistingKind(const std::string& schema, const std::string& name) {
  {
    std::lock_guard<std::mutex> lock(cache_->mu);
    auto it = cache_->kinds.find({schema, name});
    if (it != cache_->kinds.end()) return it->second;
    if (cache_->listed_schemas.count(schema)) return RelationKind::kNone;
  }
  auto kind = LookUpRelation(schema, name);
  return kind.ok() ? *kind : RelationKind::kNone;  // an error is not cached: asked again
}

Result<RelationKind> PostgresAdapter::LookUpRelation(const std::string& schema,
                                                     const std::string& name) {
  auto r = conn_->ExecPrepared(
      "select c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace "
      "where n.nspname = $1 and c.relname = $2",
      {schema, name});
  if (!r.ok()) return r.status();
  RelationKind kind = r->rows() == 0        ? RelationKind::kNone
                      : r->get(0, 0) == "v" ? RelationKind::kView
                                            : RelationKind::kTable;
  CacheRelation(schema, name, kind);
  return kind;
}

Status PostgresAdapter::CacheSchemas(const std::vector<std::string>& schemas) {
  auto r = conn_->ExecPrepared(
      "select n.nspname, c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = "
      "c.relnamespace where n.nspname = any($1::text[]) and c.relkind in ('r', 'v', 'm', 'p', "
      "'f')",
      {TextArray(schemas)});
  if (!r.ok()) return r.status();
  std::lock_guard<std::mutex> lock(cache_->mu);
  for (int i = 0; i < r->rows(); ++i) {
    cache_->kinds[{r->str(i, 0), r->str(i, 1)}] =
        r->get(i, 2) == "v" ? RelationKind::kView : RelationKind::kTable;
  }
  cache_->listed_schemas.insert(schemas.begin(), schemas.end());
  return Status::Ok();
}

void PostgresAdapter::CacheRelation(const std::string& schema, const std::string& name,
                                    RelationKind kind) {
  std::lock_guard<std::mutex> lock(cache_->mu);
  cache_->kinds[{schema, name}] = kind;
}

Result<std::vector<RelationRef>> PostgresAdapter::DependentViews(const RelationRef& relation) {
  // A view depends on what its rewrite rule reads; followed to views on views.
  auto r = conn_->ExecPrepared(
      "with recursive dep(oid) as (select r.ev_class from pg_depend d join pg_rewrite r on "
      "r.oid = d.objid where d.classid = 'pg_rewrite'::regclass and d.refclassid = "
      "'pg_class'::regclass and d.refobjid = to_regclass($1) and r.ev_class <> d.refobjid "
      "union select r.ev_class from dep join pg_depend d on d.refobjid = dep.oid join "
      "pg_rewrite r on r.oid = d.objid where d.classid = 'pg_rewrite'::regclass and "
      "d.refclassid = 'pg_class'::regclass and r.ev_class <> d.refobjid) "
      "select n.nspname, c.relname from dep join pg_class c on c.oid = dep.oid "
      "join pg_namespace n on n.oid = c.relnamespace",
      {relation.Quoted()});
  if (!r.ok()) return r.status();
  std::vector<RelationRef> out;
  for (int i = 0; i < r->rows(); ++i) out.push_back({r->str(i, 0), r->str(i, 1)});
  return out;
}

Result<std::vector<CatalogRelation>> PostgresAdapter::Catalog(
    const std::vector<std::string>& schemas) {
  auto r = conn_->ExecParams(
      "select n.nspname, c.relname, case c.relkind when 'v' then 'VIEW' when 'm' then "
      "'MATERIALIZED VIEW' else 'BASE TABLE' end, pg_get_userbyid(c.relowner), "
      "obj_description(c.oid, 'pg_class'), a.attnum, a.attname, "
      "format_type(a.atttypid, a.atttypmod), col_description(c.oid, a.attnum) "
      "from pg_class c join pg_namespace n on n.oid = c.relnamespace "
      "join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped "
      "where n.nspname = any($1::text[]) and c.relkind in ('r', 'p', 'v', 'm', 'f') "
      "order by n.nspname, c.relname, a.attnum",
      {TextArray(schemas)});
  if (!r.ok()) return r.status();
  auto text = [&](int row, int col) {
    return r->is_null(row, col) ? std::nullopt : std::optional(r->str(row, col));
  };
  std::vector<CatalogRelation> out;
  for (int i = 0; i < r->rows(); ++i) {
    if (out.empty() || out.back().schema != r->get(i, 0) || out.back().name != r->get(i, 1)) {
      out.push_back({.schema = r->str(i, 0),
                     .name = r->str(i, 1),
                     .type = r->str(i, 2),
                     .owner = r->str(i, 3),
                     .comment = text(i, 4)});
    }
    out.back().columns.push_back({.index = std::atoi(r->str(i, 5).c_str()),
                                  .name = r->str(i, 6),
                                  .type = r->str(i, 7),
                                  .comment = text(i, 8)});
  }
  return out;
}

Result<std::vector<TypedColumn>> PostgresAdapter::ColumnsOf(const std::string& schema,
                                                            const std::string& name) {
  auto r = conn_->ExecPrepared(
      "select a.attname, format_type(a.atttypid, a.atttypmod), format_type(a.atttypid, null), "
      "case when a.atttypmod > 4 and a.atttypid in (1042, 1043) then a.atttypmod - 4 end, "
      "case when a.atttypid = 1700 and a.atttypmod > 0 then ((a.atttypmod - 4) >> 16) & 65535 "
      "end, case when a.atttypid = 1700 and a.atttypmod > 0 then (a.atttypmod - 4) & 65535 end "
      "from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = "
      "c.relnamespace where (n.nspname = $1 or ($1 = '' and n.oid = pg_my_temp_schema())) and "
      "c.relname = $2 and a.attnum > 0 and not a.attisdropped order by a.attnum",
      {schema, name});
  if (!r.ok()) return r.status();
  auto number = [&](int row, int col) -> std::optional<int64_t> {
    if (r->is_null(row, col)) return std::nullopt;
    return std::atoll(r->str(row, col).c_str());
  };
  std::vector<TypedColumn> out;
  for (int i = 0; i < r->rows(); ++i) {
    out.push_back({.name = r->str(i, 0),
                   .type = r->str(i, 1),
                   .base_type = r->str(i, 2),
                   .char_size = number(i, 3),
                   .numeric_precision = number(i, 4),
                   .numeric_scale = number(i, 5)});
  }
  return out;
}

std::string PostgresAdapter::SeedType(SeedColumnType type) const {
  switch (type) {
    case SeedColumnType::kInteger:
      return "integer";
    case SeedColumnType::kBigInteger:
      return "bigint";
    case SeedColumnType::kNumber:
      return "numeric";
    case SeedColumnType::kBoolean:
      return "boolean";
    case SeedColumnType::kDate:
      return "date";
    case SeedColumnType::kTimestamp:
      return "timestamp without time zone";
    case SeedColumnType::kText:
      return "text";
  }
  return "text";
}

std::string PostgresAdapter::CreateSchemaSql(const std::string& schema) const {
  return "create schema if not exists " + Quote(schema);
}

std::vector<std::string> PostgresAdapter::ReplaceRelationSql(const RelationRef& relation,
                                                             const std::string& sql,
                                                             RelationKind build,
                                                             RelationKind existing,
                                                             const nlohmann::json& indexes) const {
  return transform::ReplaceRelationSql(relation, sql, build, existing, indexes);
}

std::vector<std::string> PostgresAdapter::IncrementalSql(const RelationRef& relation,
                                                         const std::string& sql,
                                                         const std::string& strategy,
                                                         const std::vector<std::string>& unique_key,
                                                         const std::vector<std::string>& columns,
                                                         std::string* error) const {
  return transform::IncrementalSql(relation, sql, strategy, unique_key, columns, error);
}

std::string PostgresAdapter::CreateTableSql(const RelationRef& relation,
                                            const std::vector<TypedColumn>& columns) const {
  std::string defs;
  for (const auto& c : columns)
    defs += fmt::format("{}{} {}", defs.empty() ? "" : ", ", c.name, c.type);
  return fmt::format("create table {} ({})", relation.Quoted(), defs);
}

std::string PostgresAdapter::TruncateTableSql(const RelationRef& relation) const {
  return fmt::format("truncate table {}", relation.Quoted());
}

std::vector<std::string> PostgresAdapter::SwapInSql(const RelationRef& loaded,
                                                    const RelationRef& target,
                                                    RelationKind existing) const {
  std::vector<std::string> swap;
  const char* kind = existing == RelationKind::kView ? "view" : "table";
  if (existing != RelationKind::kNone) {
    swap.push_back(fmt::format("alter {} {} rename to {}", kind, target.Quoted(),
                               Quote(SuffixedName(target.identifier, "__dbt_backup"))));
  }
  swap.push_back(
      fmt::format("alter table {} rename to {}", loaded.Quoted(), Quote(target.identifier)));
  if (existing != RelationKind::kNone) {
    swap.push_back(
        fmt::format("drop {} {} cascade", kind, target.QuotedWithSuffix("__dbt_backup")));
  }
  return swap;
}

std::string PostgresAdapter::TestQuerySql(const std::string& compiled, const std::string& fail_calc,
                                          const std::string& warn_if,
                                          const std::string& error_if) const {
  return transform::TestQuerySql(compiled, fail_calc, warn_if, error_if);
}

std::vector<std::string> PostgresAdapter::SnapshotCreateSql(const RelationRef& relation,
                                                            const std::string& sql,
                                                            const SnapshotConfig& config,
                                                            const std::string& now_sql) const {
  return transform::SnapshotCreateSql(relation, sql, config, now_sql);
}

std::string PostgresAdapter::SnapshotStageSql(const std::string& sql) const {
  return transform::SnapshotStageSql(sql);
}

std::vector<std::string> PostgresAdapter::SnapshotMergeSql(const RelationRef& relation,
                                                           const SnapshotConfig& config,
                                                           const std::vector<std::string>& columns,
                                                           const std::string& now_sql) const {
  return transform::SnapshotMergeSql(relation, config, columns, now_sql);
}

}  // namespace pdv::transform
