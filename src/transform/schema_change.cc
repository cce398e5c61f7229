#include "transform/schema_change.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "transform/contracts.h"

namespace pdv::transform {
namespace {

const TypedColumn* Find(const std::vector<TypedColumn>& columns, const std::string& name) {
  auto it = std::find_if(columns.begin(), columns.end(),
                         [&](const TypedColumn& c) { return c.name == name; });
  return it == columns.end() ? nullptr : &*it;
}

}  // namespace

Result<SchemaChange> PlanSchemaChange(Adapter& adapter, const Node& node, const std::string& sql,
                                      const std::vector<TypedColumn>& target) {
  SchemaChange change;
  for (const auto& c : target) change.columns.push_back(c.name);
  std::string mode =
      node.config.contains("on_schema_change") && node.config["on_schema_change"].is_string()
          ? node.config["on_schema_change"].get<std::string>()
          : "ignore";
  if (mode == "ignore") return change;
  if (mode != "fail" && mode != "append_new_columns" && mode != "sync_all_columns") {
    return Status::Error(
        fmt::format("{}: on_schema_change '{}' is not one of ignore, fail, append_new_columns, "
                    "sync_all_columns",
                    node.original_file_path, mode));
  }
  auto source = QueryColumns(adapter, sql);
  if (!source.ok())
    return Status::Error(fmt::format("{}: {}", node.original_file_path, source.message()));
  std::vector<const TypedColumn*> added, removed;
  std::vector<std::pair<const TypedColumn*, const TypedColumn*>> retyped;  // source, target
  for (const auto& c : *source) {
    const TypedColumn* t = Find(target, c.name);
    if (!t) {
      added.push_back(&c);
    } else if (t->type != c.type) {
      retyped.emplace_back(&c, t);
    }
  }
  for (const auto& t : target) {
    if (!Find(*source, t.name)) removed.push_back(&t);
  }
  if (added.empty() && removed.empty() && retyped.empty()) return change;
  auto names = [](const std::vector<const TypedColumn*>& cs) {
    std::vector<std::string> out;
    for (const auto* c : cs) out.push_back(c->name);
    return out;
  };
  if (mode == "fail") {
    std::vector<std::string> types;
    for (const auto& [s, t] : retyped)
      types.push_back(fmt::format("{} ({} -> {})", s->name, t->type, s->type));
    return Status::Error(fmt::format(
        "{}: the source and target schemas on this incremental model are out of sync!\n"
        "They can be reconciled in several ways:\n"
        "  - set the `on_schema_change` config to either append_new_columns or "
        "sync_all_columns, depending on your situation.\n"
        "  - Re-run the incremental model with `full_refresh: True` to update the target "
        "schema.\n"
        "  - update the schema manually and re-run the process.\n\n"
        "Additional troubleshooting context:\n"
        "   Source columns not in target: [{}]\n"
        "   Target columns not in source: [{}]\n"
        "   New column types: [{}]",
        node.original_file_path, fmt::join(names(added), ", "), fmt::join(names(removed), ", "),
        fmt::join(types, ", ")));
  }
  RelationRef rel{node.schema, node.alias};
  for (const auto* c : added) {
    change.alters.push_back(fmt::format("alter table {} add column {} {}", rel.Quoted(),
                                        adapter.Quote(c->name), c->type));
  }
  if (mode == "sync_all_columns") {
    for (const auto* c : removed) {
      change.alters.push_back(fmt::format("alter table {} drop column {} cascade", rel.Quoted(),
                                          adapter.Quote(c->name)));
    }
    for (const auto& [s, t] : retyped) {
      change.alters.push_back(fmt::format("alter table {} alter column {} type {} using {}::{}",
                                          rel.Quoted(), adapter.Quote(s->name), s->type,
                                          adapter.Quote(s->name), s->type));
    }
  }
  // The new rows go to the columns the model now yields, as dbt's dest_columns.
  change.columns.clear();
  for (const auto& c : *source) change.columns.push_back(c.name);
  return change;
}

}  // namespace pdv::transform
