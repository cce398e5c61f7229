#pragma once

// The SQL each materialization runs, with dbt-postgres's semantics, as pure functions so
// that golden tests can pin it. The runner executes each list in one transaction.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pdv::transform {

enum class RelationKind { kNone, kTable, kView };

struct RelationRef {
  std::string schema;
  std::string identifier;
  std::string Quoted() const;
  std::string QuotedWithSuffix(const std::string& suffix) const;
};

// A relation's column as the catalog gives it.
struct TypedColumn {
  std::string name;
  std::string type;  // format_type(), e.g. "integer", "character varying(20)"
  // dbt's Column parts: the type without its modifiers ("character varying"), and the
  // modifiers where the type has them.
  std::string base_type;
  std::optional<int64_t> char_size, numeric_precision, numeric_scale;
};

// `identifier` + `suffix`, the identifier cut so that the whole fits PostgreSQL's 63 bytes.
std::string SuffixedName(const std::string& identifier, const std::string& suffix);

// view and table: build under <name>__dbt_tmp, rename the old relation to
// <name>__dbt_backup, rename the new one into place, drop the backup. In one transaction,
// readers see the old relation until commit and the new one after, never none.
std::vector<std::string> ReplaceRelationSql(const RelationRef& rel, const std::string& sql,
                                            RelationKind build, RelationKind existing,
                                            const nlohmann::json& indexes);

// incremental on an existing table: append, delete+insert (by unique_key) or merge of
// the model's rows, each one statement. Where dbt stages the new rows in a temporary
// table, the model's query is a subquery or a materialized CTE: a temporary table costs
// catalog rows written and removed at every run, which a run every few milliseconds
// (transform watch) pays in latency and catalog bloat. `columns`: the target's columns,
// in order.
// Returns an error text in `error` for an unknown strategy or a merge without a key.
std::vector<std::string> IncrementalSql(const RelationRef& rel, const std::string& sql,
                                        const std::string& strategy,
                                        const std::vector<std::string>& unique_key,
                                        const std::vector<std::string>& columns,
                                        std::string* error);

// dbt-postgres's `indexes` config entry ({columns, unique, type}) as CREATE INDEX.
std::string IndexSql(const RelationRef& rel, const nlohmann::json& index);

// A data test's query wrapped to count its failing rows.
std::string TestQuerySql(const std::string& compiled, const std::string& fail_calc = "count(*)",
                         const std::string& warn_if = "!= 0", const std::string& error_if = "!= 0");

// Ephemeral models as CTEs: injected into the model's own WITH, or a new one.
std::string InjectCtes(const std::string& sql,
                       const std::vector<std::pair<std::string, std::string>>& ctes);

// A unique_key config (string or list) as column names.
std::vector<std::string> UniqueKeyColumns(const nlohmann::json& unique_key);

}  // namespace pdv::transform
