#pragma once

// incremental_strategy='microbatch': the model built one time window (batch) at a time.
// Its `event_time` column, `batch_size` (hour, day, month, year), `begin` and `lookback`
// configs say which batches a run builds: --event-time-start/--event-time-end when given;
// else from `begin` on the first run (and with --full-refresh), or the current batch and
// `lookback` batches before it. Within a batch, every ref() or source() of a node that has
// an `event_time` config reads only that window's rows. Each batch is its own transaction:
// the first one of a new or fully refreshed model creates the table, the others merge
// their rows by `unique_key`, as dbt-postgres does (which requires one).

#include <string>
#include <vector>

#include "transform/materializations.h"

namespace pdv::transform {

struct Batch {
  std::string start, end;  // "YYYY-MM-DD HH:MM:SS", UTC; end exclusive
};

// The SQL that lists the batches between `start_sql` and `end_sql` (timestamp
// expressions): each window of `batch_size` from the start truncated to it, the last one
// cut at the end. Pure.
std::string BatchesSql(const std::string& start_sql, const std::string& end_sql,
                       const std::string& batch_size);

// `relation` read through an event-time filter for `batch`, as dbt renders it.
std::string EventTimeFiltered(const std::string& relation, const std::string& event_time,
                              const std::string& identifier, const Batch& batch);

class MicrobatchMaterialization final : public Materialization {
 public:
  NodeResult Execute(NodeRun& run) override;
};

}  // namespace pdv::transform
