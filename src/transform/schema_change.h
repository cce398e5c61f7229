#pragma once

// An incremental run's `on_schema_change` (dbt's process_schema_changes): ignore (the
// default), fail, append_new_columns or sync_all_columns, comparing the columns the
// model's SQL yields with those of its existing table.

#include <string>
#include <vector>

#include "common/status.h"
#include "transform/adapter.h"
#include "transform/project.h"

namespace pdv::transform {

struct SchemaChange {
  std::vector<std::string> alters;   // run before the new rows go in
  std::vector<std::string> columns;  // the columns the new rows are written to
};

// What the run does about `target`'s columns (the table's now) for `sql`; `fail` with a
// difference, or an unknown on_schema_change, is an error naming the model's file.
Result<SchemaChange> PlanSchemaChange(Adapter& adapter, const Node& node, const std::string& sql,
                                      const std::vector<TypedColumn>& target);

}  // namespace pdv::transform
