// pdv transform show (show_command.h).

#include "transform/show_command.h"

#include <fmt/format.h>

#include <algorithm>

#include "transform/runner.h"

namespace pdv::transform {
namespace {

// `sql` with at most `limit` rows, as dbt-postgres' get_limit_subquery_sql.
std::string Limited(const std::string& sql, int limit) {
  if (limit < 0) return sql;
  return fmt::format("select * from (\n{}\n) as model_limit_subq\nlimit {}", sql, limit);
}

// The table agate's print_table draws: a header, a rule, the rows; numbers to the right.
void PrintTable(std::FILE* out, const jinja::Value& table) {
  std::vector<std::string> names;
  if (const jinja::Value* n = table.dict().Find("column_names")) {
    for (const auto& v : n->list()) names.push_back(v.Str());
  }
  std::vector<std::vector<std::pair<std::string, bool>>> rows;  // text, right-aligned
  if (const jinja::Value* r = table.dict().Find("rows")) {
    for (const auto& row : r->list()) {
      std::vector<std::pair<std::string, bool>> cells;
      for (const auto& cell : *row.dict().sequence) {
        cells.emplace_back(cell.is_none() ? "" : cell.Str(), cell.is_number());
      }
      rows.push_back(std::move(cells));
    }
  }
  std::vector<size_t> width;
  for (const auto& n : names) width.push_back(std::max<size_t>(n.size(), 1));
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size() && c < width.size(); ++c)
      width[c] = std::max(width[c], row[c].first.size());
  }
  auto line = [&](const std::vector<std::pair<std::string, bool>>& cells) {
    std::string text = "|";
    for (size_t c = 0; c < width.size(); ++c) {
      const auto& [cell, right] = c < cells.size() ? cells[c] : std::pair<std::string, bool>{};
      text += right ? fmt::format(" {:>{}} |", cell, width[c])
                    : fmt::format(" {:<{}} |", cell, width[c]);
    }
    fmt::print(out, "{}\n", text);
  };
  std::vector<std::pair<std::string, bool>> header, rule;
  for (size_t c = 0; c < names.size(); ++c) {
    header.emplace_back(names[c], false);
    rule.emplace_back(std::string(width[c], '-'), false);
  }
  line(header);
  line(rule);
  for (const auto& row : rows) line(row);
  fmt::print(out, "\n");
}

bool Shows(const Node& n) {
  return n.resource_type == NodeType::kModel || n.resource_type == NodeType::kSeed ||
         n.resource_type == NodeType::kSnapshot || n.resource_type == NodeType::kTest;
}

}  // namespace

Status Show(const Project& project, const Graph& graph, Adapter& adapter,
            const std::set<std::string>& selected, const TransformOptions& options) {
  TransformOptions show_options = options;
  show_options.command = "show";
  Runner runner(project, graph, &adapter, show_options);
  auto preview = [&](const std::string& title, const std::string& sql) -> Status {
    auto rows = adapter.Query(Limited(sql, options.limit));
    if (!rows.ok()) return rows.status();
    fmt::print(options.out, "Previewing {}:\n", title);
    PrintTable(options.out, rows->table);
    return Status::Ok();
  };
  if (!options.inline_sql.empty()) {
    Node inline_node;
    inline_node.unique_id = fmt::format("sql_operation.{}.inline_query", project.name);
    inline_node.resource_type = NodeType::kModel;
    inline_node.name = "inline_query";
    inline_node.package_name = project.name;
    inline_node.original_file_path = "<--inline>";
    inline_node.raw_code = options.inline_sql;
    inline_node.schema = project.target.schema;
    inline_node.alias = inline_node.name;
    auto tmpl = jinja::Template::Parse(options.inline_sql, "--inline");
    if (!tmpl.ok()) return tmpl.status();
    inline_node.tmpl = *tmpl;
    auto sql = runner.CompileWith(inline_node, nullptr);
    if (!sql.ok()) return Status::Error("Compilation Error in --inline: " + sql.message());
    if (Status s = preview("inline node", *sql); !s.ok())
      return Status::Error("Database Error in --inline: " + s.message());
    return Status::Ok();
  }
  int shown = 0;
  for (const auto& id : graph.order()) {
    if (!selected.count(id)) continue;
    const Node& n = project.nodes.at(id);
    if (!Shows(n)) continue;
    std::string sql;
    if (n.resource_type == NodeType::kSeed || n.resource_type == NodeType::kSnapshot) {
      sql = "select * from " + n.RelationName();
    } else {
      auto compiled = runner.Compile(n);
      if (!compiled.ok()) {
        return Status::Error(fmt::format("Compilation Error in {} {} ({}): {}",
                                         NodeTypeName(n.resource_type), n.name,
                                         n.original_file_path, compiled.message()));
      }
      sql = *compiled;
    }
    if (Status s = preview(fmt::format("node '{}'", n.name), sql); !s.ok()) {
      return Status::Error(fmt::format("Database Error in {} {} ({}): {}",
                                       NodeTypeName(n.resource_type), n.name, n.original_file_path,
                                       s.message()));
    }
    shown++;
  }
  if (shown == 0) {
    return Status::Error(
        "nothing to preview: --select matches no model, seed, snapshot or test "
        "(or pass --inline 'SQL')");
  }
  return Status::Ok();
}

}  // namespace pdv::transform
