#include "transform/runner.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include "common/random_secret.h"
#include "transform/artifacts.h"
#include "transform/context.h"
#include "transform/materialization.h"
#include "transform/reporter.h"
#include "transform/seed_file.h"
#include "transform/snapshot.h"
#include "transform/unit_test.h"

namespace pdv::transform {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// One statement's outcome, with what dbt shows of it.
struct StatementResult {
  bool ok = true;
  std::string command_status;  // "SELECT 10", "INSERT 0 3"
  std::string error;           // the server's primary message (+ detail/hint)
  int position = 0;            // 1-based character position of the error, 0 if none
  std::string sqlstate;
  int64_t rows = -1;
  std::string first_value;  // first row, first column (tests)
  std::vector<std::string> first_row;
  bool has_rows = false;
};

StatementResult RunStatement(pg::Connection& conn, const std::string& sql) {
  StatementResult r;
  // PDV_TRANSFORM_TRACE=1: each statement's duration on stderr (profiling a project).
  static const bool trace = std::getenv("PDV_TRANSFORM_TRACE") != nullptr;
  auto started = Clock::now();
  pg::SqlError error;
  auto res = conn.Exec(sql, &error);
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
      r.has_rows = true;
      r.first_value = res->str(0, 0);
      for (int c = 0; c < res->columns(); ++c) r.first_row.push_back(res->str(0, c));
    }
  } else {
    r.ok = false;
    r.error = error.primary;
    while (!r.error.empty() && (r.error.back() == '\n' || r.error.back() == ' '))
      r.error.pop_back();
    if (!error.detail.empty()) r.error += fmt::format(" ({})", error.detail);
    r.position = error.position;
    r.sqlstate = error.sqlstate;
  }
  return r;
}

}  // namespace

Runner::Runner(const Project& project, const Graph& graph, pg::Connection* conn,
               const TransformOptions& options)
    : project_(project),
      graph_(graph),
      conn_(conn),
      options_(options),
      reporter_(options.out, options.quiet) {
  generated_at_ = ArtifactTime();
}

Result<std::vector<TypedColumn>> Runner::ColumnsOf(const std::string& schema,
                                                   const std::string& name) {
  auto r = conn_->ExecParams(
      "select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute a join "
      "pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace where "
      "(n.nspname = $1 or ($1 = '' and n.oid = pg_my_temp_schema())) and c.relname = $2 and "
      "a.attnum > 0 and not a.attisdropped order by a.attnum",
      {schema, name});
  if (!r.ok()) return r.status();
  std::vector<TypedColumn> out;
  for (int i = 0; i < r->rows(); ++i) out.push_back({r->str(i, 0), r->str(i, 1)});
  return out;
}

RelationKind Runner::ExistingKind(const std::string& schema, const std::string& name) {
  if (!conn_) return RelationKind::kNone;
  auto r = conn_->ExecParams(
      "select c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace "
      "where n.nspname = $1 and c.relname = $2",
      {schema, name});
  if (!r.ok() || r->rows() == 0) return RelationKind::kNone;
  return r->get(0, 0) == "v" ? RelationKind::kView : RelationKind::kTable;
}

bool Runner::Incremental(const Node& node, RelationKind existing) const {
  return node.materialized() == "incremental" && existing != RelationKind::kNone &&
         !options_.full_refresh && !node.config.value("full_refresh", false);
}

ContextOptions Runner::ExecuteOptions(const Node& node, RelationKind existing) {
  ContextOptions opts{.parse = false,
                      .incremental = Incremental(node, existing),
                      .which = options_.command,
                      .full_refresh = options_.full_refresh};
  opts.run_query = [this](const std::string& sql) { return RunQuery(sql); };
  return opts;
}

// run_query(): the result as dbt's agate table, reduced to what templates use: .rows (a
// list of lists) and .columns (each with .name and .values()); ints, floats and booleans
// typed, the rest text, NULL as none.
Result<QueryResult> Runner::RunQuery(const std::string& sql) {
  if (!conn_) return Status::Error("no database connection");
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

Result<std::string> Runner::CompileWithCtes(const Node& node, RelationKind existing,
                                            std::vector<std::string>* seen,
                                            const ContextOptions* unit_test) {
  ContextCapture capture;
  ContextOptions opts = ExecuteOptions(node, existing);
  if (unit_test) {  // the unit test's inputs and overrides, in the model and its ephemerals
    opts.relation_overrides = unit_test->relation_overrides;
    opts.var_overrides = unit_test->var_overrides;
    opts.env_overrides = unit_test->env_overrides;
    opts.macro_overrides = unit_test->macro_overrides;
    if (unit_test->macro_overrides.count("is_incremental")) {
      opts.incremental = unit_test->macro_overrides.at("is_incremental").Truthy();
    }
  }
  jinja::ValueDict ctx = MakeContext(project_, node, opts, &capture);
  std::string sql;
  if (!node.test_macro.empty()) {
    jinja::Arguments args;
    const Node& attached = project_.nodes.at(node.attached_node);
    jinja::Value model = RelationValue(attached.database, attached.schema, attached.alias);
    if (attached.resource_type == "model" && attached.materialized() == "ephemeral") {
      // A test of an ephemeral model reads it as a CTE, as dbt does.
      model = EphemeralValue(attached);
      capture.ephemerals.push_back(attached.unique_id);
    }
    if (node.config.contains("where") && node.config["where"].is_string()) {
      // dbt's `where` test config: the test reads the model through this filter.
      model.dict().text = fmt::format("(select * from {} where {}) dbt_subquery",
                                      *model.dict().text, node.config["where"].get<std::string>());
    }
    args.named.emplace_back("model", model);
    if (!node.column_name.empty())
      args.named.emplace_back("column_name", jinja::Value(node.column_name));
    for (const auto& [k, v] : node.test_kwargs.items) {
      jinja::Value value = v;
      if (v.is_string() &&
          (v.as_string().starts_with("ref(") || v.as_string().starts_with("source("))) {
        // The relation itself, as dbt passes it: macros read its parts.
        auto evaluated =
            project_.env->Evaluate(v.as_string(), node.defined_at, ctx, node.package_name);
        if (!evaluated.ok()) return evaluated.status();
        value = *evaluated;
      } else if (v.is_string() && (v.as_string().find("{{") != std::string::npos ||
                                   v.as_string().find("{%") != std::string::npos)) {
        // dbt renders a test argument's Jinja in the test's context.
        auto tmpl = jinja::Template::Parse(v.as_string(), node.defined_at);
        if (!tmpl.ok()) return tmpl.status();
        auto rendered = project_.env->Render(**tmpl, ctx, node.package_name);
        if (!rendered.ok()) return rendered.status();
        value = jinja::Value(*rendered);
      }
      args.named.emplace_back(k, value);
    }
    auto r = project_.env->CallMacro(node.test_macro, args, ctx, node.package_name,
                                     node.test_macro_package);
    if (!r.ok())
      return Status::Error(fmt::format("{} (test defined at {})", r.message(), node.defined_at));
    sql = r->Str();
  } else {
    auto r = project_.env->Render(*node.tmpl, ctx, node.package_name);
    if (!r.ok()) return r.status();
    sql = *r;
  }
  // Ephemeral models referenced (directly or through other ephemerals) become CTEs,
  // innermost first, each once.
  std::vector<std::pair<std::string, std::string>> ctes;
  for (const auto& id : capture.ephemerals) {
    if (std::find(seen->begin(), seen->end(), id) != seen->end()) continue;
    seen->push_back(id);
    const Node& eph = project_.nodes.at(id);
    std::vector<std::string> inner_seen = *seen;
    auto inner = CompileWithCtes(eph, RelationKind::kNone, &inner_seen, unit_test);
    if (!inner.ok()) return inner;
    // The inner model's own CTEs were injected into its SQL; hoist nothing further.
    ctes.emplace_back("__dbt__cte__" + eph.name, *inner);
  }
  return InjectCtes(sql, ctes);
}

Result<std::string> Runner::Compile(const Node& node) {
  return Compile(node, ExistingKind(node.schema, node.alias));
}

Result<std::string> Runner::Compile(const Node& node, RelationKind existing) {
  std::vector<std::string> seen;
  auto r = CompileWithCtes(node, existing, &seen);
  if (r.ok()) compiled_[node.unique_id] = *r;
  return r;
}

Result<std::vector<std::string>> Runner::RenderHooks(const Node& node, const char* key,
                                                     RelationKind existing) {
  std::vector<std::string> out;
  if (!node.config.contains(key)) return out;
  ContextCapture capture;
  jinja::ValueDict ctx = MakeContext(project_, node, ExecuteOptions(node, existing), &capture);
  for (const auto& hook : node.config[key]) {
    std::string text = hook.is_string()   ? hook.get<std::string>()
                       : hook.is_object() ? hook.value("sql", "")
                                          : "";
    auto tmpl = jinja::Template::Parse(text, fmt::format("{} ({})", node.original_file_path, key));
    if (!tmpl.ok()) return tmpl.status();
    auto r = project_.env->Render(**tmpl, ctx, node.package_name);
    if (!r.ok()) return r.status();
    if (r->find_first_not_of(" \t\r\n") != std::string::npos) out.push_back(*r);
  }
  return out;
}

void Runner::WriteCompiled(const Node& node, const std::string& sql) const {
  std::error_code ec;
  fs::path p =
      fs::path(project_.target_path) / "compiled" / node.package_name / node.original_file_path;
  if (node.resource_type == "test" && !node.test_macro.empty()) {
    p = fs::path(project_.target_path) / "compiled" / node.package_name / node.original_file_path /
        (node.name + ".sql");
  }
  fs::create_directories(p.parent_path(), ec);
  std::ofstream(p) << sql;
}

// The source line of a SQL error: the line of the compiled SQL that holds `position`,
// found verbatim in the model file when it is there, else the compiled file's line.
std::string Runner::WhereInSource(const Node& node, const std::string& statement,
                                  int position) const {
  auto it = compiled_.find(node.unique_id);
  if (position <= 0 || it == compiled_.end()) return node.original_file_path;
  size_t at = statement.find(it->second);
  if (at == std::string::npos || static_cast<size_t>(position - 1) < at)
    return node.original_file_path;
  size_t offset = static_cast<size_t>(position - 1) - at;
  const std::string& compiled = it->second;
  int line =
      1 + static_cast<int>(std::count(
              compiled.begin(),
              compiled.begin() + static_cast<long>(std::min(offset, compiled.size())), '\n'));
  size_t start = 0;
  for (int l = 1; l < line; ++l) start = compiled.find('\n', start) + 1;
  std::string text = compiled.substr(start, compiled.find('\n', start) - start);
  auto trim = [](std::string s) {
    s.erase(0, s.find_first_not_of(" \t\r"));
    s.erase(s.find_last_not_of(" \t\r") + 1);
    return s;
  };
  text = trim(text);
  if (!text.empty() && !node.raw_code.empty()) {
    std::istringstream raw(node.raw_code);
    std::string l;
    int n = 0, found = 0, matches = 0;
    while (std::getline(raw, l)) {
      ++n;
      if (trim(l) == text) {
        found = n;
        ++matches;
      }
    }
    if (matches == 1) return fmt::format("{}:{}", node.original_file_path, found);
  }
  return fmt::format("{} (at {}/compiled/{}/{}:{})", node.original_file_path,
                     fs::path(project_.target_path).filename().string(), project_.name,
                     node.original_file_path, line);
}

NodeResult Runner::ExecuteModel(const Node& node, const std::string& compiled,
                                RelationKind existing) {
  NodeResult res{.unique_id = node.unique_id};
  RelationRef rel{node.schema, node.alias};
  std::string mat = node.materialized();
  auto pre = RenderHooks(node, "pre_hook", existing);
  auto post = RenderHooks(node, "post_hook", existing);
  if (!pre.ok() || !post.ok()) {
    res.status = NodeStatus::kError;
    res.message = !pre.ok() ? pre.message() : post.message();
    return res;
  }
  bool incremental = Incremental(node, existing);
  std::vector<std::string> body;
  size_t main_statement = 0;
  if (mat == "view" || mat == "table" || (mat == "incremental" && !incremental)) {
    RelationKind build = mat == "view" ? RelationKind::kView : RelationKind::kTable;
    body = ReplaceRelationSql(
        rel, compiled, build, existing,
        node.config.contains("indexes") ? node.config["indexes"] : nlohmann::json());
    main_statement = 1;
  } else if (incremental) {
    if (existing == RelationKind::kView) {
      res.status = NodeStatus::kError;
      res.message = fmt::format("{} is a view; run with --full-refresh to rebuild it as a table",
                                rel.Quoted());
      return res;
    }
    auto cols = ColumnsOf(node.schema, node.alias);
    if (!cols.ok()) {
      res.status = NodeStatus::kError;
      res.message = cols.message();
      return res;
    }
    std::vector<std::string> columns;
    for (const auto& c : *cols) columns.push_back(c.name);
    std::string error;
    body = IncrementalSql(rel, compiled, node.config.value("incremental_strategy", ""),
                          UniqueKeyColumns(node.config.value("unique_key", nlohmann::json())),
                          columns, &error);
    if (!error.empty()) {
      res.status = NodeStatus::kError;
      res.message = fmt::format("{}: {}", node.original_file_path, error);
      return res;
    }
  } else {
    res.status = NodeStatus::kError;
    res.message =
        fmt::format("{}: unknown materialization '{}' (view, table, incremental, ephemeral)",
                    node.original_file_path, mat);
    return res;
  }
  auto txn = pg::Transaction::Begin(*conn_, Begin());
  if (!txn.ok()) {
    res.status = NodeStatus::kError;
    res.message = fmt::format("{}: {}", node.original_file_path, txn.message());
    return res;
  }
  std::vector<std::string> statements(pre->begin(), pre->end());
  size_t main_index = statements.size() + main_statement;
  size_t last_body = statements.size() + body.size() - 1;
  statements.insert(statements.end(), body.begin(), body.end());
  statements.insert(statements.end(), post->begin(), post->end());
  for (size_t i = 0; i < statements.size(); ++i) {
    StatementResult r = RunStatement(*conn_, statements[i]);
    if (!r.ok) {  // the guard rolls back
      res.status = NodeStatus::kError;
      std::string where = i == main_index ? WhereInSource(node, statements[i], r.position)
                                          : node.original_file_path;
      res.message = fmt::format("{}: {}", where, r.error);
      if (r.sqlstate == "08006") res.message += " [connection lost]";
      return res;
    }
    if (i == (incremental ? last_body : main_index)) {
      res.adapter_message = r.command_status;
      res.rows_affected = r.rows;
    }
  }
  if (Status s = txn->Commit(CommitSql()); !s.ok()) {
    res.status = NodeStatus::kError;
    res.message = fmt::format("{}: {}", node.original_file_path, s.message());
    if (pg::IsConnectionLost(s)) res.message += " [connection lost]";
    return res;
  }
  res.status = NodeStatus::kSuccess;
  return res;
}

NodeResult Runner::ExecuteSeed(const Node& node) {
  NodeResult res{.unique_id = node.unique_id};
  std::ifstream in(fs::path(project_.dir) / node.original_file_path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::map<std::string, std::string> column_types;
  if (node.config.contains("column_types") && node.config["column_types"].is_object()) {
    for (const auto& [k, v] : node.config["column_types"].items())
      column_types[k] = v.get<std::string>();
  }
  auto seed = SeedFile::Parse(ss.str(), node.original_file_path, column_types);
  if (!seed.ok()) {
    res.status = NodeStatus::kError;
    res.message = seed.message();
    return res;
  }
  RelationRef rel{node.schema, node.alias};
  RelationRef tmp{node.schema, SuffixedName(node.alias, "__dbt_tmp")};
  // quote_columns: false leaves the header's names to PostgreSQL's folding, as dbt does.
  bool quote = node.config.value("quote_columns", true);
  auto column = [&](const std::string& name) { return quote ? QuoteIdentifier(name) : name; };
  std::string cols, defs;
  for (size_t i = 0; i < seed->columns.size(); ++i) {
    cols += (i ? ", " : "") + column(seed->columns[i]);
    defs += fmt::format("{}{} {}", i ? ", " : "", column(seed->columns[i]), seed->types[i]);
  }
  RelationKind existing = ExistingKind(node.schema, node.alias);
  auto fail = [&](const std::string& what) {  // the guard rolls back
    res.status = NodeStatus::kError;
    res.message = fmt::format("{}: {}", node.original_file_path, what);
    return res;
  };
  auto txn = pg::Transaction::Begin(*conn_, Begin());
  if (!txn.ok()) return fail(txn.message());
  for (const std::string& sql :
       {fmt::format("create schema if not exists {}", QuoteIdentifier(node.schema)),
        fmt::format("create table {} ({})", tmp.Quoted(), defs)}) {
    StatementResult r = RunStatement(*conn_, sql);
    if (!r.ok) return fail(r.error);
  }
  Status copy = conn_->CopyBegin(
      fmt::format("copy {} ({}) from stdin with (format csv)", tmp.Quoted(), cols));
  if (copy.ok()) copy = conn_->CopyPut(seed->CopyData());
  if (copy.ok()) copy = conn_->CopyEnd();
  if (!copy.ok()) return fail(copy.message());
  std::vector<std::string> swap;
  if (existing != RelationKind::kNone) {
    swap.push_back(fmt::format("alter {} {} rename to {}",
                               existing == RelationKind::kView ? "view" : "table", rel.Quoted(),
                               QuoteIdentifier(SuffixedName(node.alias, "__dbt_backup"))));
  }
  swap.push_back(
      fmt::format("alter table {} rename to {}", tmp.Quoted(), QuoteIdentifier(node.alias)));
  if (existing != RelationKind::kNone) {
    swap.push_back(fmt::format("drop {} {} cascade",
                               existing == RelationKind::kView ? "view" : "table",
                               rel.QuotedWithSuffix("__dbt_backup")));
  }
  for (const auto& sql : swap) {
    StatementResult r = RunStatement(*conn_, sql);
    if (!r.ok) return fail(r.error);
  }
  if (Status c = txn->Commit(CommitSql()); !c.ok()) return fail(c.message());
  res.status = NodeStatus::kSuccess;
  res.rows_affected = static_cast<int64_t>(seed->rows.size());
  res.adapter_message = fmt::format("INSERT {}", seed->rows.size());
  return res;
}

NodeResult Runner::ExecuteTest(const Node& node, const std::string& compiled) {
  NodeResult res{.unique_id = node.unique_id};
  // store_failures is not implemented: an error, not silently ignored.
  if (node.config.contains("store_failures") && node.config["store_failures"].is_boolean() &&
      node.config["store_failures"].get<bool>()) {
    res.status = NodeStatus::kError;
    res.message = fmt::format(
        "{}: test config 'store_failures: true' is not supported by pdv "
        "transform",
        node.defined_at.empty() ? node.original_file_path : node.defined_at);
    return res;
  }
  auto text_config = [&](const char* key, const char* fallback) {
    return node.config.contains(key) && node.config[key].is_string()
               ? node.config[key].get<std::string>()
               : std::string(fallback);
  };
  std::string sql = compiled;
  if (node.config.contains("limit") && node.config["limit"].is_number_integer()) {
    sql = fmt::format("select * from (\n{}\n) dbt_limit limit {}", compiled,
                      node.config["limit"].get<int64_t>());
  }
  StatementResult r = RunStatement(
      *conn_, TestQuerySql(sql, text_config("fail_calc", "count(*)"),
                           text_config("warn_if", "!= 0"), text_config("error_if", "!= 0")));
  if (!r.ok) {
    res.status = NodeStatus::kError;
    res.message = fmt::format(
        "{}: {}", node.defined_at.empty() ? node.original_file_path : node.defined_at, r.error);
    return res;
  }
  res.failures = r.has_rows ? std::atoll(r.first_value.c_str()) : 0;
  bool should_warn = r.first_row.size() == 3 && r.first_row[1] == "t";
  bool should_error = r.first_row.size() == 3 && r.first_row[2] == "t";
  std::string severity = node.config.value("severity", "ERROR");
  for (char& c : severity) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  // dbt's rule: error_if decides a failure (severity error only), else warn_if a warning.
  if (severity != "WARN" && should_error) {
    res.status = NodeStatus::kFail;
  } else if (should_warn) {
    res.status = NodeStatus::kWarn;
  } else {
    res.status = NodeStatus::kPass;
  }
  if (res.status != NodeStatus::kPass) {
    bool fail = res.status == NodeStatus::kFail;
    res.message =
        fmt::format("Got {} result{}, configured to {} if {}", res.failures,
                    res.failures == 1 ? "" : "s", fail ? "fail" : "warn",
                    fail ? text_config("error_if", "!= 0") : text_config("warn_if", "!= 0"));
  }
  return res;
}

// A snapshot in one transaction: the first run creates the table; later ones stage the
// query, add the columns the snapshot lacks, and merge (snapshot.h). The run's time is
// read once, so every row it writes carries the same one.
NodeResult Runner::ExecuteSnapshot(const Node& node, const std::string& compiled,
                                   RelationKind existing) {
  NodeResult res{.unique_id = node.unique_id};
  auto fail = [&](const std::string& what) {
    res.status = NodeStatus::kError;
    res.message = fmt::format("{}: {}", node.original_file_path, what);
    return res;
  };
  auto config = ReadSnapshotConfig(node.config);
  if (!config.ok()) return fail(config.message());
  if (existing == RelationKind::kView) return fail(node.RelationName() + " is a view");
  RelationRef rel{node.schema, node.alias};
  StatementResult now = RunStatement(*conn_, "select now()::timestamp::text");
  if (!now.ok) return fail(now.error);
  std::string now_sql = fmt::format("'{}'::timestamp", now.first_value);
  auto run = [&](const std::string& sql) { return RunStatement(*conn_, sql); };
  std::vector<std::string> statements;
  auto txn = pg::Transaction::Begin(*conn_, Begin());  // rolls back unless committed
  if (!txn.ok()) return fail(txn.message());
  if (existing == RelationKind::kNone) {
    statements = SnapshotCreateSql(rel, compiled, *config, now_sql);
  } else {
    if (StatementResult r = run(SnapshotStageSql(compiled)); !r.ok) return fail(r.error);
    auto staged = ColumnsOf("", kSnapshotSourceTable);
    auto have = ColumnsOf(rel.schema, rel.identifier);
    if (!staged.ok() || !have.ok()) return fail(!staged.ok() ? staged.message() : have.message());
    std::set<std::string> present;
    for (const auto& c : *have) present.insert(c.name);
    std::vector<std::string> source_columns;
    for (const auto& [name, type] : *staged) {
      source_columns.push_back(name);
      // A column the query gained is added, as dbt does; the old rows hold null in it.
      if (!present.count(name)) {
        statements.push_back(fmt::format("alter table {} add column {} {}", rel.Quoted(),
                                         QuoteIdentifier(name), type));
      }
    }
    if (config->hard_deletes == SnapshotConfig::HardDeletes::kNewRecord &&
        !present.count("dbt_is_deleted")) {
      statements.push_back(fmt::format(
          "alter table {} add column dbt_is_deleted text default 'False'", rel.Quoted()));
    }
    auto merge = SnapshotMergeSql(rel, *config, source_columns, now_sql);
    statements.insert(statements.end(), merge.begin(), merge.end());
  }
  for (const auto& sql : statements) {
    StatementResult r = run(sql);
    if (!r.ok) {
      int position = r.position;
      size_t at = sql.find(compiled);
      return fail(position > 0 && at != std::string::npos
                      ? r.error + " (in " + WhereInSource(node, sql, position) + ")"
                      : r.error);
    }
  }
  if (Status c = txn->Commit(CommitSql()); !c.ok()) return fail(c.message());
  res.status = NodeStatus::kSuccess;
  res.adapter_message = existing == RelationKind::kNone ? "CREATE TABLE" : "MERGE";
  return res;
}

// A unit test: the model compiled with each given input replaced by a CTE of its rows (cast
// to the input's columns), run into a temporary table, and compared with the expected rows
// as multisets over the columns they name. All in a transaction that is rolled back.
NodeResult Runner::ExecuteUnitTest(const Node& node) {
  NodeResult res{.unique_id = node.unique_id};
  auto fail = [&](const std::string& what) {  // the guard rolls back
    res.status = NodeStatus::kError;
    res.message = fmt::format("{}: unit test {}: {}", node.defined_at, node.name, what);
    return res;
  };
  const Node& model = project_.nodes.at(node.attached_node);
  const nlohmann::json& ut = node.unit_test;
  // Nothing a unit test does stays: the guard rolls it all back.
  auto txn = pg::Transaction::Begin(*conn_, "begin");
  if (!txn.ok()) return fail(txn.message());
  ContextOptions overrides;
  std::string ctes;
  int index = 0;
  for (const auto& given : ut.value("given", nlohmann::json::array())) {
    std::string input = given.value("input", "");
    const Node* target = nullptr;
    std::string key = "this";
    if (input != "this") {
      static const std::regex kRef(
          R"(^\s*ref\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]+)['"]\s*)?\)\s*$)");
      static const std::regex kSource(
          R"(^\s*source\(\s*['"]([^'"]+)['"]\s*,\s*['"]([^'"]+)['"]\s*\)\s*$)");
      std::smatch m;
      if (std::regex_match(input, m, kRef)) {
        target = m[2].matched ? project_.FindModelOrSeed(m[2], m[1])
                              : project_.FindModelOrSeed(m[1], "", node.package_name);
      } else if (std::regex_match(input, m, kSource)) {
        target = project_.FindSource(m[1], m[2], node.package_name);
      }
      if (!target) return fail(fmt::format("input {} names no model, seed or source", input));
      key = target->unique_id;
    } else {
      target = &model;
    }
    std::string schema = target->schema;
    std::string name = target->resource_type == "source" ? target->identifier : target->alias;
    auto columns = ColumnsOf(schema, name);
    if (!columns.ok()) return fail(columns.message());
    if (columns->empty() && target->resource_type == "model") {
      // Not built yet (`this` before the model's first build): its columns from its query.
      std::vector<std::string> shape_seen;
      auto shape_sql = CompileWithCtes(*target, RelationKind::kNone, &shape_seen);
      if (!shape_sql.ok()) return fail(shape_sql.message());
      std::string shape = fmt::format("__pdv_unit_shape_{}", index);
      if (StatementResult r = RunStatement(
              *conn_, fmt::format("create temporary table {} on commit drop as select * from "
                                  "(\n{}\n) t limit 0",
                                  shape, *shape_sql));
          !r.ok) {
        return fail(fmt::format("the columns of {}: {}", input, r.error));
      }
      columns = ColumnsOf("", shape);
      if (!columns.ok()) return fail(columns.message());
    }
    auto sql = FixtureSql(given, *columns, /*only_named=*/false);
    if (!sql.ok()) return fail(fmt::format("given {}: {}", input, sql.message()));
    std::string cte = fmt::format("__pdv_unit_given_{}", index++);
    ctes += fmt::format("{}{} as (\n{}\n)", ctes.empty() ? "with " : ",\n", cte, *sql);
    jinja::Value rel = RelationValue("", "", cte);
    rel.dict().text = cte;
    rel.dict().Set("is_cte", jinja::Value(true));
    overrides.relation_overrides[key] = rel;
  }
  const nlohmann::json& over = ut.value("overrides", nlohmann::json::object());
  if (over.contains("vars") && over["vars"].is_object()) overrides.var_overrides = over["vars"];
  if (over.contains("env_vars") && over["env_vars"].is_object()) {
    for (const auto& [k, v] : over["env_vars"].items())
      overrides.env_overrides[k] = v.is_string() ? v.get<std::string>() : v.dump();
  }
  if (over.contains("macros") && over["macros"].is_object()) {
    for (const auto& [k, v] : over["macros"].items()) overrides.macro_overrides[k] = JsonToValue(v);
  }
  std::vector<std::string> seen;
  auto compiled = CompileWithCtes(model, RelationKind::kNone, &seen, &overrides);
  if (!compiled.ok()) return fail(compiled.message());
  std::string actual = fmt::format(
      "create temporary table __pdv_unit_actual on commit drop as\n"
      "{}\nselect * from (\n{}\n) __pdv_model",
      ctes, *compiled);
  if (StatementResult r = RunStatement(*conn_, actual); !r.ok) {
    return fail(fmt::format("the model on the given rows: {}", r.error));
  }
  auto actual_columns = ColumnsOf("", "__pdv_unit_actual");
  if (!actual_columns.ok()) return fail(actual_columns.message());
  const nlohmann::json& expect = ut["expect"];
  std::vector<std::string> compared;
  if (expect.value("format", "dict") == "sql") {
    for (const auto& c : *actual_columns) compared.push_back(c.name);
  } else {
    auto named = FixtureColumns(expect);
    if (!named.ok()) return fail("expect: " + named.message());
    compared = *named;
  }
  auto expected = FixtureSql(expect, *actual_columns, /*only_named=*/true);
  if (!expected.ok()) return fail("expect: " + expected.message() + " (of the model's output)");
  auto diff = conn_->Exec(UnitDiffSql("__pdv_unit_actual", *expected, compared));
  if (!diff.ok()) return fail(diff.message());
  res.failures = diff->rows();
  if (res.failures == 0) {
    res.status = NodeStatus::kPass;
    return res;
  }
  res.status = NodeStatus::kFail;
  std::string rows;
  for (int i = 0; i < diff->rows() && i < 20; ++i) {
    std::string row =
        diff->str(i, 0) == "missing" ? "  - expected, missing:  " : "  + actual, unexpected: ";
    for (size_t c = 0; c < compared.size(); ++c) {
      row += fmt::format("{}{}={}", c ? ", " : "", compared[c],
                         diff->is_null(i, static_cast<int>(c) + 1)
                             ? "null"
                             : diff->str(i, static_cast<int>(c) + 1));
    }
    rows += "\n" + row;
  }
  res.message = fmt::format("{}: unit test {} of {}: {} row{} differ{}", node.defined_at, node.name,
                            model.name, res.failures, res.failures == 1 ? "" : "s", rows);
  return res;
}

NodeResult Runner::Execute(const Node& node) {
  auto start = Clock::now();
  NodeResult res{.unique_id = node.unique_id};
  if (node.resource_type == "seed") {
    res = ExecuteSeed(node);
  } else {
    // One catalog lookup per node: compile, hooks and materialization share it.
    RelationKind existing = node.resource_type == "test" || node.resource_type == "unit_test"
                                ? RelationKind::kNone
                                : ExistingKind(node.schema, node.alias);
    auto compiled = node.resource_type == "unit_test" ? Result<std::string>(std::string())
                                                      : Compile(node, existing);
    if (!compiled.ok()) {
      res.status = NodeStatus::kError;
      res.message = compiled.message();
    } else {
      WriteCompiled(node, *compiled);
      res = node.resource_type == "test"        ? ExecuteTest(node, *compiled)
            : node.resource_type == "unit_test" ? ExecuteUnitTest(node)
            : node.resource_type == "snapshot"  ? ExecuteSnapshot(node, *compiled, existing)
                                                : ExecuteModel(node, *compiled, existing);
      res.compiled = *compiled;
    }
  }
  res.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return res;
}

// Dependencies first; among the nodes ready to run, tests before models (so that a failing
// test stops its model's dependants in `build`), then by unique id.
std::vector<std::string> Runner::ExecutionOrder(const std::set<std::string>& selected) const {
  // Ordered over the whole graph (a selected model may depend on an unselected one through
  // an ephemeral), then filtered to the selection.
  std::map<std::string, int> pending;
  for (const auto& [id, n] : project_.nodes)
    pending[id] = static_cast<int>(graph_.parents(id).size());
  auto rank = [&](const std::string& id) {
    const std::string& type = project_.nodes.at(id).resource_type;
    return std::make_pair(type == "unit_test" ? 0 : type == "test" ? 1 : 2, id);
  };
  std::set<std::pair<int, std::string>> ready;
  for (const auto& [id, n] : pending) {
    if (n == 0) ready.insert(rank(id));
  }
  std::vector<std::string> order;
  while (!ready.empty()) {
    std::string id = ready.begin()->second;
    ready.erase(ready.begin());
    if (selected.count(id)) order.push_back(id);
    for (const auto& c : graph_.children(id)) {
      if (--pending[c] == 0) ready.insert(rank(c));
    }
  }
  return order;
}

RunSummary Runner::Run(const std::string& command, const std::set<std::string>& selected) {
  auto started = Clock::now();
  reporter_.Header(project_);
  std::vector<std::string> order = ExecutionOrder(selected);
  // Workers: this runner, and one more per extra thread, each with its own connection.
  std::vector<std::unique_ptr<pg::Connection>> extra_connections;
  std::vector<Runner*> workers{this};
  std::vector<std::unique_ptr<Runner>> extra_workers;
  int threads = std::max(1, options_.threads > 0 ? options_.threads : project_.target.threads);
  threads = std::min<int>(threads, std::max<int>(1, static_cast<int>(order.size())));
  for (int i = 1; i < threads && conn_; ++i) {
    auto c = pg::Connection::Connect(project_.target.conninfo);
    if (!c.ok()) {
      fmt::print(stderr, "warning: thread {}: {}; running with {} threads\n", i + 1, c.message(),
                 i);
      break;
    }
    extra_connections.push_back(std::make_unique<pg::Connection>(std::move(*c)));
    extra_workers.push_back(
        std::make_unique<Runner>(project_, graph_, extra_connections.back().get(), options_));
    workers.push_back(extra_workers.back().get());
  }
  if (workers.size() > 1) {
    // Concurrent CREATE SCHEMA IF NOT EXISTS of one name can fail in PostgreSQL: the
    // schemas are made first, one by one, as dbt does.
    std::set<std::string> schemas;
    for (const auto& id : order) {
      const Node& n = project_.nodes.at(id);
      bool builds = (n.resource_type == "model" && n.materialized() != "ephemeral") ||
                    n.resource_type == "seed" || n.resource_type == "snapshot";
      if (builds) schemas.insert(n.schema);
    }
    for (const auto& schema : schemas) {
      StatementResult r =
          RunStatement(*conn_, "create schema if not exists " + QuoteIdentifier(schema));
      if (!r.ok) fmt::print(stderr, "warning: schema {}: {}\n", schema, r.error);
    }
  }
  reporter_.Concurrency(workers.size(), project_.target.name);
  RunSummary summary;
  summary.total = static_cast<int>(order.size());
  std::vector<NodeResult> results;
  std::set<std::string> skip, failed_nodes;
  std::map<std::string, int> kinds;  // "table model" -> n
  std::vector<std::pair<const Node*, NodeResult>> problems;

  // What each selected node waits for: the selected nodes it depends on (through
  // unselected ones), and, as in dbt build, the selected tests of those (data tests of
  // its parents, unit tests of itself), so that a failing test stops it before it starts.
  std::set<std::string> chosen(order.begin(), order.end());
  std::map<std::string, std::set<std::string>> ancestors;
  auto ancestors_of = [&](const std::string& id) -> const std::set<std::string>& {
    auto it = ancestors.find(id);
    if (it == ancestors.end()) it = ancestors.emplace(id, graph_.Ancestors(id)).first;
    return it->second;
  };
  std::map<std::string, std::set<std::string>> waits_for;
  std::map<std::string, std::vector<std::string>> tests_of;  // node -> its selected tests
  for (const auto& id : order) {
    const Node& n = project_.nodes.at(id);
    if (n.resource_type == "unit_test") tests_of[n.attached_node].push_back(id);
    if (n.resource_type == "test") {
      for (const auto& p : graph_.parents(id)) tests_of[p].push_back(id);
    }
  }
  for (const auto& id : order) {
    const Node& n = project_.nodes.at(id);
    std::set<std::string>& waits = waits_for[id];
    std::vector<std::string> stack(graph_.parents(id).begin(), graph_.parents(id).end());
    std::set<std::string> seen;
    while (!stack.empty()) {
      std::string p = stack.back();
      stack.pop_back();
      if (!seen.insert(p).second) continue;
      if (chosen.count(p)) {
        waits.insert(p);
      } else {
        stack.insert(stack.end(), graph_.parents(p).begin(), graph_.parents(p).end());
      }
    }
    if (n.resource_type != "test" && n.resource_type != "unit_test") {
      std::set<std::string> direct = waits;
      for (const auto& p : direct) {
        for (const auto& t : tests_of[p]) {
          // Not a test that itself reads this node (relationships to it): that would wait
          // for itself.
          if (!ancestors_of(t).count(id)) waits.insert(t);
        }
      }
      for (const auto& t : tests_of[id]) {
        if (project_.nodes.at(t).resource_type == "unit_test") waits.insert(t);
      }
    }
  }

  // The scheduler: start ready nodes in `order` while a worker is free; one thread per
  // node run; results are handled here, in the calling thread, one at a time.
  struct Done {
    size_t worker;
    NodeResult result;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Done> completed;
  std::vector<std::thread> running(workers.size());
  std::vector<bool> busy(workers.size(), false);
  std::map<std::string, std::string> n_of_by_id;
  std::set<std::string> finished;
  std::vector<std::string> pending = order;
  int index = 0;
  size_t in_flight = 0;
  auto handle = [&](const std::string& id, NodeResult r) {
    const Node& node = project_.nodes.at(id);
    const std::string& n_of = n_of_by_id[id];
    reporter_.Finished(n_of, node, r);
    bool failed = r.status == NodeStatus::kFail || r.status == NodeStatus::kError;
    if (r.status == NodeStatus::kSuccess || r.status == NodeStatus::kPass) summary.pass++;
    if (r.status == NodeStatus::kWarn) summary.warn++;
    if (failed) summary.error++;
    if (r.status == NodeStatus::kWarn || failed) problems.emplace_back(&node, r);
    if (failed) {
      // The dependants of a failed model, or of the model a failed test checks, are
      // skipped (their tests too, below); other tests of the same model still run.
      failed_nodes.insert(id);
      std::set<std::string> roots{id};
      if (node.resource_type == "test") roots = graph_.parents(id);
      // A failed unit test stops its model (dbt build), not the model's inputs.
      if (node.resource_type == "unit_test") {
        roots = {node.attached_node};
        skip.insert(node.attached_node);
      }
      for (const auto& root : roots) {
        for (const auto& d : graph_.Descendants(root)) {
          if (project_.nodes.at(d).resource_type != "test") skip.insert(d);
        }
      }
    }
    finished.insert(id);
    results.push_back(std::move(r));
  };
  while (!pending.empty() || in_flight > 0) {
    // Start what is ready, in order, on free workers; skipped nodes finish at once.
    for (auto it = pending.begin(); it != pending.end();) {
      const std::string id = *it;
      bool ready = std::all_of(waits_for[id].begin(), waits_for[id].end(),
                               [&](const std::string& w) { return finished.count(w) > 0; });
      if (!ready) {
        ++it;
        continue;
      }
      const Node& node = project_.nodes.at(id);
      const bool is_test = node.resource_type == "test" || node.resource_type == "unit_test";
      bool parent_failed = false;
      if (is_test) {
        for (const auto& p : graph_.parents(id))
          parent_failed |= skip.count(p) > 0 || failed_nodes.count(p) > 0;
      }
      bool skipped = skip.count(id) || parent_failed;
      auto free_worker = std::find(busy.begin(), busy.end(), false);
      if (!skipped && free_worker == busy.end()) break;  // wait for a worker
      it = pending.erase(it);
      n_of_by_id[id] = fmt::format("{} of {}", ++index, order.size());
      kinds[ConsoleReporter::Kind(node)]++;
      if (skipped) {
        reporter_.Skipped(n_of_by_id[id], node);
        summary.skip++;
        finished.insert(id);
        results.push_back(NodeResult{
            .unique_id = id, .status = NodeStatus::kSkipped, .message = "an upstream node failed"});
        it = pending.begin();  // a skip may make others ready
        continue;
      }
      reporter_.Started(n_of_by_id[id], node);
      size_t w = static_cast<size_t>(free_worker - busy.begin());
      busy[w] = true;
      ++in_flight;
      Runner* worker = workers[w];
      running[w] = std::thread([&mu, &cv, &completed, w, worker, &node] {
        NodeResult r = worker->Execute(node);
        r.thread = static_cast<int>(w) + 1;
        std::lock_guard<std::mutex> lock(mu);
        completed.push_back(Done{w, std::move(r)});
        cv.notify_one();
      });
    }
    if (in_flight == 0) {
      if (!pending.empty() && std::none_of(pending.begin(), pending.end(), [&](const auto& id) {
            return std::all_of(waits_for[id].begin(), waits_for[id].end(),
                               [&](const std::string& w) { return finished.count(w) > 0; });
          })) {
        fmt::print(stderr, "error: {} nodes wait for nodes that never run\n", pending.size());
        break;  // cannot happen with a DAG; never spin
      }
      continue;
    }
    std::vector<Done> done;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return !completed.empty(); });
      done.swap(completed);
    }
    for (auto& d : done) {
      running[d.worker].join();
      busy[d.worker] = false;
      --in_flight;
      std::string id = d.result.unique_id;  // before the result is moved
      handle(id, std::move(d.result));
    }
  }
  // The manifest shows what every worker compiled.
  for (const auto& w : extra_workers) compiled_.insert(w->compiled_.begin(), w->compiled_.end());
  double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  reporter_.Summary(kinds, elapsed, summary, problems);
  if (Status s = WriteRunResults(results, elapsed, command); !s.ok()) {
    fmt::print(stderr, "warning: {}\n", s.message());
  }
  if (Status s = WriteManifest(); !s.ok()) fmt::print(stderr, "warning: {}\n", s.message());
  return summary;
}

Status Runner::WriteManifest() const {
  return pdv::transform::WriteManifest(project_, graph_, compiled_, generated_at_);
}

Status Runner::WriteRunResults(const std::vector<NodeResult>& results, double elapsed,
                               const std::string& command) const {
  return pdv::transform::WriteRunResults(project_, options_, results, elapsed, command);
}

}  // namespace pdv::transform
