#pragma once

// The initial snapshot (and a resync's): creates the slot, reads the table in the slot's
// exported snapshot without blocking writers, and commits it to RAW at the slot's
// consistent point with its checkpoint; a resync appends only what differs from RAW and
// marks deleted the keys the snapshot lacks. Internal to src/cdc/.

#include <stop_token>
#include <vector>

#include "cdc/cdc.h"
#include "cdc/erasure_filter.h"
#include "cdc/replication_connection.h"
#include "cdc/slot_manager.h"
#include "common/log.h"
#include "common/status.h"
#include "pg/connection.h"
#include "pg/lease.h"
#include "warehouse/warehouse.h"

namespace pdv::cdc {

// The session's, borrowed for the snapshot's length.
struct SnapshotContext {
  const CdcOptions& options;
  Logger& log;
  ReplicationConnection& repl;  // creates the slot; must stay open and idle meanwhile
  pg::Connection& source;       // reads the table in the exported snapshot
  warehouse::Warehouse& wh;
  ErasureFilter& erasure;
  pg::Lease& lease;  // kept while the rows are copied
  const SlotManager& slot;
};

struct SnapshotTaken {
  warehouse::Checkpoint checkpoint;               // committed with the rows
  std::vector<warehouse::RawColumn> raw_columns;  // RAW's, its key index built
};

// The source table's columns (`qualified`: "schema"."table"), in order, as RAW keeps
// them: name, SQL type, and whether its primary key has it. In `conn`'s transaction.
pdv::Result<std::vector<warehouse::RawColumn>> SourceColumns(pg::Connection& conn,
                                                             const std::string& qualified);

// Takes the snapshot; `with_deletions` (a resync over a RAW that has rows): staged and
// compared with RAW, missing keys marked deleted. On failure nothing is committed and
// the slot stays (the next session drops it and starts over); pg::kConnectionLost when the exported
// snapshot was lost with the replication connection. `source` is left in a transaction
// then: end the session.
pdv::Result<SnapshotTaken> TakeSnapshot(const SnapshotContext& ctx, bool with_deletions,
                                        std::stop_token stop);

}  // namespace pdv::cdc
