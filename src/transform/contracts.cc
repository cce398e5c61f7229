#include "transform/contracts.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <regex>

namespace pdv::transform {
namespace {

std::string Lower(std::string s) {
  std::ranges::transform(s, s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string Upper(std::string s) {
  std::ranges::transform(s, s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

std::string Where(const Node& node) {
  return node.properties_at.empty()
             ? node.original_file_path
             : fmt::format("{} ({})", node.original_file_path, node.properties_at);
}

std::string Literal(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

struct Declared {
  std::string name, data_type;
  bool quote = false;
  const nlohmann::json* properties = nullptr;
};

Result<std::vector<Declared>> DeclaredColumns(const Node& node) {
  std::vector<Declared> out;
  std::vector<std::string> untyped;
  if (node.columns.is_object()) {
    for (const auto& [name, col] : node.columns.items()) {
      Declared d{.name = name, .properties = &col};
      if (col.is_object() && col.contains("data_type") && col["data_type"].is_string())
        d.data_type = col["data_type"].get<std::string>();
      if (col.is_object())
        d.quote = ConfigBool(col.value("quote", nlohmann::json())).value_or(false);
      if (d.data_type.empty()) untyped.push_back(name);
      out.push_back(std::move(d));
    }
  }
  if (out.empty()) {
    return Status::Error(fmt::format(
        "{}: this model has an enforced contract, and its 'columns' specification is missing",
        Where(node)));
  }
  if (!untyped.empty()) {
    return Status::Error(
        fmt::format("{}: contracted models require data_type to be defined for each column; it is "
                    "missing for {}",
                    Where(node), fmt::join(untyped, ", ")));
  }
  return out;
}

// ref('x') / ref('pkg', 'x') / source('s', 't') in a foreign key's `to`.
Result<std::string> ToRelation(const Project& project, const Node& node, const std::string& to) {
  static const std::regex kRef(
      R"(^\s*ref\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]+)['"]\s*)?\)\s*$)");
  static const std::regex kSource(
      R"(^\s*source\(\s*['"]([^'"]+)['"]\s*,\s*['"]([^'"]+)['"]\s*\)\s*$)");
  std::smatch m;
  const Node* target = nullptr;
  if (std::regex_match(to, m, kRef)) {
    target = m[2].matched ? project.FindModelOrSeed(m[2], m[1])
                          : project.FindModelOrSeed(m[1], "", node.package_name);
  } else if (std::regex_match(to, m, kSource)) {
    target = project.FindSource(m[1], m[2], node.package_name);
  } else {
    return Status::Error(
        fmt::format("{}: a foreign_key constraint's `to` must be ref(...) or source(...), not '{}'",
                    Where(node), to));
  }
  if (!target) {
    return Status::Error(
        fmt::format("{}: a foreign_key constraint's `to` ({}) names nothing", Where(node), to));
  }
  return target->RelationName();
}

std::vector<std::string> Strings(const nlohmann::json& j) {
  std::vector<std::string> out;
  if (j.is_string()) out.push_back(j.get<std::string>());
  if (j.is_array()) {
    for (const auto& e : j)
      if (e.is_string()) out.push_back(e.get<std::string>());
  }
  return out;
}

// References of a foreign key: `expression` as dbt-postgres writes it, or `to`/`to_columns`.
Result<std::string> References(const Project& project, const Node& node, const nlohmann::json& c) {
  if (c.contains("to") && c["to"].is_string()) {
    auto rel = ToRelation(project, node, c["to"].get<std::string>());
    if (!rel.ok()) return rel;
    return fmt::format("{} ({})", *rel,
                       fmt::join(Strings(c.value("to_columns", nlohmann::json())), ", "));
  }
  return c.value("expression", "");
}

std::string Prefix(const nlohmann::json& c) {
  return c.contains("name") && c["name"].is_string()
             ? fmt::format("constraint {} ", c["name"].get<std::string>())
             : "";
}

Result<std::string> ColumnConstraint(const Project& project, const Node& node,
                                     const nlohmann::json& c) {
  std::string type = c.value("type", "");
  std::string expression = c.contains("expression") && c["expression"].is_string()
                               ? c["expression"].get<std::string>()
                               : "";
  if (type == "not_null") return Prefix(c) + "not null";
  if (type == "unique") return Prefix(c) + "unique";
  if (type == "primary_key") return Prefix(c) + "primary key";
  if (type == "check") return fmt::format("{}check ({})", Prefix(c), expression);
  if (type == "custom") return expression;
  auto refs = References(project, node, c);
  if (!refs.ok()) return refs;
  return fmt::format("{}references {}", Prefix(c), *refs);
}

Result<std::string> ModelConstraint(const Project& project, const Node& node,
                                    const nlohmann::json& c) {
  std::string type = c.value("type", "");
  std::string columns =
      fmt::format("{}", fmt::join(Strings(c.value("columns", nlohmann::json())), ", "));
  std::string expression = c.contains("expression") && c["expression"].is_string()
                               ? c["expression"].get<std::string>()
                               : "";
  if (type == "check") return fmt::format("{}check ({})", Prefix(c), expression);
  if (type == "custom") return expression;
  if (columns.empty()) {
    return Status::Error(
        fmt::format("{}: a model-level {} constraint needs `columns`", Where(node), type));
  }
  if (type == "unique") return fmt::format("{}unique ({})", Prefix(c), columns);
  if (type == "primary_key") return fmt::format("{}primary key ({})", Prefix(c), columns);
  if (type == "foreign_key") {
    auto refs = References(project, node, c);
    if (!refs.ok()) return refs;
    return fmt::format("{}foreign key ({}) references {}", Prefix(c), columns, *refs);
  }
  return Status::Error(fmt::format(
      "{}: a model-level '{}' constraint is not supported on postgres (declare it on the "
      "column)",
      Where(node), type));
}

}  // namespace

bool ContractEnforced(const Node& node) {
  auto it = node.config.find("contract");
  return it != node.config.end() && it->is_object() && ConfigFlag(*it, "enforced", false);
}

Result<std::vector<TypedColumn>> QueryColumns(Adapter& adapter, const std::string& sql) {
  const std::string view = "pdv_query_columns__dbt_tmp";
  StatementResult r = adapter.Execute(fmt::format(
      "create or replace temporary view {} as select * from (\n{}\n) as dbt_sbq where false "
      "limit 0",
      adapter.Quote(view), sql));
  if (!r.ok) return Status::Error(r.error);
  auto columns = adapter.ColumnsOf("", view);
  StatementResult dropped =
      adapter.Execute(fmt::format("drop view if exists {}", adapter.Quote(view)));
  if (!columns.ok()) return columns;
  if (!dropped.ok) return Status::Error(dropped.error);
  return columns;
}

Status CheckContract(Adapter& adapter, const Node& node, const std::string& sql) {
  auto declared = DeclaredColumns(node);
  if (!declared.ok()) return declared.status();
  auto actual = QueryColumns(adapter, sql);
  if (!actual.ok())
    return Status::Error(fmt::format("{}: {}", node.original_file_path, actual.message()));
  // The declared types as the warehouse names them (int -> integer, varchar(10) ->
  // character varying), compared without their modifiers, as dbt compares data types.
  std::vector<std::string> probes;
  for (const auto& d : *declared)
    probes.push_back(fmt::format("format_type(to_regtype({}), null)", Literal(d.data_type)));
  auto rows = adapter.QueryText("select " + fmt::format("{}", fmt::join(probes, ", ")));
  if (!rows.ok()) return Status::Error(fmt::format("{}: {}", Where(node), rows.message()));
  std::map<std::string, const TypedColumn*> by_name;
  for (const auto& c : *actual) by_name[Lower(c.name)] = &c;
  struct Row {
    std::string name, definition, contract, reason;
  };
  std::vector<Row> mismatches;
  for (size_t i = 0; i < declared->size(); ++i) {
    const Declared& d = (*declared)[i];
    const auto& cell = (*rows)[0][i];
    if (!cell) {
      return Status::Error(
          fmt::format("{}: column '{}': data_type '{}' is not a type of this "
                      "database",
                      Where(node), d.name, d.data_type));
    }
    auto it = by_name.find(Lower(d.name));
    if (it == by_name.end()) {
      mismatches.push_back({d.name, "", Upper(d.data_type), "missing in definition"});
      continue;
    }
    if (Lower(it->second->base_type) != Lower(*cell)) {
      mismatches.push_back(
          {d.name, Upper(it->second->base_type), Upper(d.data_type), "data type mismatch"});
    }
    by_name.erase(it);
  }
  for (const auto& c : *actual) {
    if (by_name.count(Lower(c.name)))
      mismatches.push_back({c.name, Upper(c.base_type), "", "missing in contract"});
  }
  if (mismatches.empty()) return Status::Ok();
  std::string table =
      "| column_name | definition_type | contract_type | mismatch_reason |\n"
      "| ----------- | --------------- | ------------- | --------------- |\n";
  for (const auto& m : mismatches)
    table += fmt::format("| {} | {} | {} | {} |\n", m.name, m.definition, m.contract, m.reason);
  return Status::Error(fmt::format(
      "{}: this model has an enforced contract that failed.\nPlease ensure the name, "
      "data_type, and number of columns in your contract match the columns in your model's "
      "definition.\n\n{}",
      Where(node), table));
}

Result<std::vector<std::string>> ContractTableSql(const Project& project, const Node& node,
                                                  const RelationRef& tmp, const std::string& sql) {
  auto declared = DeclaredColumns(node);
  if (!declared.ok()) return declared.status();
  std::vector<std::string> defs, names;
  for (const auto& d : *declared) {
    std::string name = d.quote ? QuoteIdentifier(d.name) : d.name;
    names.push_back(name);
    std::string def = fmt::format("{} {}", name, d.data_type);
    if (d.properties && d.properties->is_object() && d.properties->contains("constraints")) {
      for (const auto& c : (*d.properties)["constraints"]) {
        auto text = ColumnConstraint(project, node, c);
        if (!text.ok()) return text.status();
        def += " " + *text;
      }
    }
    defs.push_back(std::move(def));
  }
  for (const auto& c : node.constraints) {
    auto text = ModelConstraint(project, node, c);
    if (!text.ok()) return text.status();
    defs.push_back(*text);
  }
  return std::vector<std::string>{
      fmt::format("create table {} (\n    {}\n)", tmp.Quoted(), fmt::join(defs, ",\n    ")),
      fmt::format("insert into {} ({})\n(\n    select {}\n    from (\n{}\n    ) as model_subq\n)",
                  tmp.Quoted(), fmt::join(names, ", "), fmt::join(names, ", "), sql)};
}

}  // namespace pdv::transform
