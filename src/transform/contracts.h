#pragma once

// Model contracts (`contract: {enforced: true}`), as dbt-postgres enforces them: the
// columns the model's SQL yields must match the declared ones by name and data_type, and a
// table is built from the declared column list with its constraints (column- and
// model-level: not_null, unique, primary_key, foreign_key, check, custom), then filled.

#include <string>
#include <vector>

#include "common/status.h"
#include "transform/adapter.h"
#include "transform/project.h"

namespace pdv::transform {

bool ContractEnforced(const Node& node);

// The columns `sql` yields, asked of the warehouse through a temporary view that is
// dropped again (the query itself is not run).
Result<std::vector<TypedColumn>> QueryColumns(Adapter& adapter, const std::string& sql);

// Compares the model's query columns with its declared ones; a mismatch is an error with
// dbt's table of what differs, naming the model's file and properties entry.
Status CheckContract(Adapter& adapter, const Node& node, const std::string& sql);

// The statements that make `tmp` the contracted table of `node` and fill it from `sql`:
// `create table tmp (<columns and constraints>)`, then the insert (the second statement).
// Model-level constraints PostgreSQL has no form for are errors naming the properties file.
Result<std::vector<std::string>> ContractTableSql(const Project& project, const Node& node,
                                                  const RelationRef& tmp, const std::string& sql);

}  // namespace pdv::transform
