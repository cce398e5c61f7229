#pragma once

// dbt snapshots (type-2 history of a query's rows by unique key): the config they take and
// the SQL of a first build and of each later run, with dbt's semantics, as pure functions
// so that tests can pin them. The runner executes them in one transaction.
//
// Columns added to the query's: dbt_scd_id (md5 of the key and the version's time),
// dbt_updated_at, dbt_valid_from, dbt_valid_to (null, or dbt_valid_to_current, while
// current) and, with hard_deletes: new_record, dbt_is_deleted ('True' / 'False').

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "transform/materialization.h"

namespace pdv::transform {

struct SnapshotConfig {
  enum class Strategy { kTimestamp, kCheck };
  enum class HardDeletes { kIgnore, kInvalidate, kNewRecord };
  Strategy strategy = Strategy::kTimestamp;
  std::vector<std::string> unique_key;
  std::string updated_at;               // a column; required by timestamp, optional for check
  std::vector<std::string> check_cols;  // check: these, or every column when check_all
  bool check_all = false;
  HardDeletes hard_deletes = HardDeletes::kIgnore;
  std::string valid_to_current;  // SQL for a current row's dbt_valid_to ("": null)
};

// From a snapshot node's config (unique_key, strategy, updated_at, check_cols,
// hard_deletes or the older invalidate_hard_deletes, dbt_valid_to_current). An error
// says which key is wrong.
Result<SnapshotConfig> ReadSnapshotConfig(const nlohmann::json& config);

// The first build: the table made from the query, every row current.
std::vector<std::string> SnapshotCreateSql(const RelationRef& rel, const std::string& sql,
                                           const SnapshotConfig& config,
                                           const std::string& now_sql);

// A later run, step 1: the query's rows into a temporary table (SnapshotSourceTable()).
std::string SnapshotStageSql(const std::string& sql);
inline constexpr char kSnapshotSourceTable[] = "__pdv_snapshot_source";

// Step 2, once the staged columns are known (and any the snapshot lacks added): new keys
// inserted; changed rows closed and their new versions inserted; keys gone from the
// query closed (invalidate) or closed and recorded deleted (new_record).
std::vector<std::string> SnapshotMergeSql(const RelationRef& rel, const SnapshotConfig& config,
                                          const std::vector<std::string>& source_columns,
                                          const std::string& now_sql);

}  // namespace pdv::transform
