#pragma once

// dbt unit tests (dbt >= 1.8, `unit_tests:` in schema files): a model run on given rows
// instead of its inputs, its output compared with the expected rows. This file builds the
// SQL of a fixture (rows as dicts, csv or sql, cast to the columns of the relation it
// stands for) and of the comparison, as pure functions; the runner executes them in a
// transaction it rolls back.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "transform/materialization.h"

namespace pdv::transform {

// A given or expect entry ({format: dict|csv|sql, rows: ...}) as a query. With `columns`
// (the input relation's), the result has exactly those columns in that order, each cast
// to its type; one a row names that the relation lacks is an error. Without (`columns`
// empty: the relation does not exist yet), the rows' own columns, untyped. `only_named`:
// just the columns the rows name, in `columns`' types (the expected side).
Result<std::string> FixtureSql(const nlohmann::json& entry, const std::vector<TypedColumn>& columns,
                               bool only_named);

// The columns an entry's rows name, in first-seen order (dict and csv formats).
Result<std::vector<std::string>> FixtureColumns(const nlohmann::json& entry);

// Rows of `expected` missing from `actual_table`'s columns `columns`, and rows there that
// were not expected, as multisets; first column __pdv_diff ('missing' / 'unexpected').
std::string UnitDiffSql(const std::string& actual_table, const std::string& expected_sql,
                        const std::vector<std::string>& columns);

}  // namespace pdv::transform
