#include "transform/test_materializations.h"

#include <fmt/format.h>

#include <optional>
#include <regex>

#include "transform/store_failures.h"
#include "transform/unit_test.h"

namespace pdv::transform {

NodeResult DataTestMaterialization::Execute(NodeRun& run) {
  const Node& node = run.node;
  const std::string& compiled = run.compiled;
  NodeResult res{.unique_id = node.unique_id};
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
  // store_failures: the failing rows kept in the audit schema, and the test counted on
  // them, as dbt's test materialization does.
  std::optional<AdapterTransaction> txn;
  auto stored = StoreFailures(run, compiled);
  if (!stored.ok()) {
    res.status = NodeStatus::kError;
    res.message = stored.message();
    return res;
  }
  if (stored->has_value()) {
    txn.emplace(std::move((*stored)->transaction));
    sql = fmt::format("select * from {}", (*stored)->relation.Quoted());
    if (node.config.contains("limit") && node.config["limit"].is_number_integer()) {
      sql += fmt::format(" limit {}", node.config["limit"].get<int64_t>());
    }
  }
  StatementResult r = run.adapter.Execute(
      run.adapter.TestQuerySql(sql, text_config("fail_calc", "count(*)"),
                               text_config("warn_if", "!= 0"), text_config("error_if", "!= 0")));
  if (r.ok && txn) {
    if (Status c = txn->Commit(run.commit_sql); !c.ok()) {
      r.ok = false;
      r.error = c.message();
    }
  }
  if (!r.ok) {
    res.status = NodeStatus::kError;
    res.message = fmt::format(
        "{}: {}", node.defined_at.empty() ? node.original_file_path : node.defined_at, r.error);
    return res;
  }
  res.failures = r.first_row.empty() ? 0 : std::atoll(r.first_value().c_str());
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

// A unit test: the model compiled with each given input replaced by a CTE of its rows (cast
// to the input's columns), run into a temporary table, and compared with the expected rows
// as multisets over the columns they name. All in a transaction that is rolled back.
NodeResult UnitTestMaterialization::Execute(NodeRun& run) {
  const Node& node = run.node;
  const Project& project = run.compiler.project();
  Adapter& adapter = run.adapter;
  NodeResult res{.unique_id = node.unique_id};
  auto fail = [&](const std::string& what) {  // the guard rolls back
    res.status = NodeStatus::kError;
    res.message = fmt::format("{}: unit test {}: {}", node.defined_at, node.name, what);
    return res;
  };
  const Node& model = project.nodes.at(node.attached_node);
  const nlohmann::json& ut = node.unit_test;
  // Nothing a unit test does stays: the guard rolls it all back.
  auto txn = AdapterTransaction::Begin(adapter);
  if (!txn.ok()) return fail(txn.message());
  ContextOptions overrides;
  std::string ctes;
  int index = 0;
  // A sql-format entry's rows rendered in the unit test's context, as dbt renders them (a
  // fixture file may call the project's macros).
  auto rendered = [&](nlohmann::json entry) -> Result<nlohmann::json> {
    if (entry.value("format", "dict") != "sql" || !entry.contains("rows") ||
        !entry["rows"].is_string()) {
      return entry;
    }
    std::string text = entry["rows"].get<std::string>();
    if (text.find("{{") == std::string::npos && text.find("{%") == std::string::npos) return entry;
    auto tmpl = jinja::Template::Parse(text, entry.value("fixture_path", node.defined_at));
    if (!tmpl.ok()) return tmpl.status();
    Node scratch = node;
    scratch.raw_code = text;
    scratch.tmpl = *tmpl;
    auto sql = run.compiler.CompileWith(scratch, nullptr);
    if (!sql.ok()) return sql.status();
    entry["rows"] = *sql;
    return entry;
  };
  for (const auto& raw_given : ut.value("given", nlohmann::json::array())) {
    auto given_or = rendered(raw_given);
    if (!given_or.ok()) return fail(given_or.message());
    const nlohmann::json& given = *given_or;
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
        target = m[2].matched ? project.FindModelOrSeed(m[2], m[1])
                              : project.FindModelOrSeed(m[1], "", node.package_name);
      } else if (std::regex_match(input, m, kSource)) {
        target = project.FindSource(m[1], m[2], node.package_name);
      }
      if (!target) return fail(fmt::format("input {} names no model, seed or source", input));
      key = target->unique_id;
    } else {
      target = &model;
    }
    std::string schema = target->schema;
    std::string name =
        target->resource_type == NodeType::kSource ? target->identifier : target->alias;
    auto columns = adapter.ColumnsOf(schema, name);
    if (!columns.ok()) return fail(columns.message());
    if (columns->empty() && target->resource_type == NodeType::kModel) {
      // Not built yet (`this` before the model's first build): its columns from its query.
      auto shape_sql = run.compiler.CompileWith(*target, nullptr);
      if (!shape_sql.ok()) return fail(shape_sql.message());
      std::string shape = fmt::format("__pdv_unit_shape_{}", index);
      if (StatementResult r = adapter.Execute(
              fmt::format("create temporary table {} on commit drop as select * from "
                          "(\n{}\n) t limit 0",
                          shape, *shape_sql));
          !r.ok) {
        return fail(fmt::format("the columns of {}: {}", input, r.error));
      }
      columns = adapter.ColumnsOf("", shape);
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
  auto compiled = run.compiler.CompileWith(model, &overrides);
  if (!compiled.ok()) return fail(compiled.message());
  std::string actual = fmt::format(
      "create temporary table __pdv_unit_actual on commit drop as\n"
      "{}\nselect * from (\n{}\n) __pdv_model",
      ctes, *compiled);
  if (StatementResult r = adapter.Execute(actual); !r.ok) {
    return fail(fmt::format("the model on the given rows: {}", r.error));
  }
  auto actual_columns = adapter.ColumnsOf("", "__pdv_unit_actual");
  if (!actual_columns.ok()) return fail(actual_columns.message());
  auto expect_or = rendered(ut["expect"]);
  if (!expect_or.ok()) return fail("expect: " + expect_or.message());
  const nlohmann::json& expect = *expect_or;
  std::vector<std::string> compared;
  bool only_named = true;
  if (expect.value("format", "dict") == "sql") {
    for (const auto& c : *actual_columns) compared.push_back(c.name);
  } else {
    auto named = FixtureColumns(expect);
    if (!named.ok()) return fail("expect: " + named.message());
    compared = *named;
    if (compared.empty()) {  // `rows: []`: no rows at all, whatever their columns
      for (const auto& c : *actual_columns) compared.push_back(c.name);
      only_named = false;
    }
  }
  auto expected = FixtureSql(expect, *actual_columns, only_named);
  if (!expected.ok()) return fail("expect: " + expected.message() + " (of the model's output)");
  auto diff = adapter.QueryText(UnitDiffSql("__pdv_unit_actual", *expected, compared));
  if (!diff.ok()) return fail(diff.message());
  res.failures = static_cast<int64_t>(diff->size());
  if (res.failures == 0) {
    res.status = NodeStatus::kPass;
    return res;
  }
  res.status = NodeStatus::kFail;
  std::string rows;
  for (size_t i = 0; i < diff->size() && i < 20; ++i) {
    const auto& cells = (*diff)[i];
    std::string row =
        cells[0] == "missing" ? "  - expected, missing:  " : "  + actual, unexpected: ";
    for (size_t c = 0; c < compared.size(); ++c) {
      row += fmt::format("{}{}={}", c ? ", " : "", compared[c],
                         cells[c + 1] ? *cells[c + 1] : std::string("null"));
    }
    rows += "\n" + row;
  }
  res.message = fmt::format("{}: unit test {} of {}: {} row{} differ{}", node.defined_at, node.name,
                            model.name, res.failures, res.failures == 1 ? "" : "s", rows);
  return res;
}

}  // namespace pdv::transform
