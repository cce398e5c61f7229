#pragma once

// The replication slot and its publication on the source: whether the slot exists,
// dropping it, taking it from a former holder's walsender, making the publication, and
// telling why a slot is gone from the source identity (system identifier and timeline)
// RAW's checkpoint recorded. Internal to src/cdc/.

#include <stop_token>
#include <string>

#include "cdc/cdc.h"
#include "cdc/replication_connection.h"
#include "common/log.h"
#include "common/status.h"
#include "pg/connection.h"
#include "warehouse/warehouse.h"

namespace pdv::cdc {

// Borrows the options, the log and the session's source connection, which outlive it.
// Not thread-safe (the session's thread).
class SlotManager {
 public:
  SlotManager(const CdcOptions& options, Logger& log, pg::Connection& source,
              ReplicationConnection::SystemIdentity identity)
      : options_(options), log_(log), source_(source), identity_(std::move(identity)) {}

  // The source reached this session (IDENTIFY_SYSTEM).
  const ReplicationConnection::SystemIdentity& identity() const { return identity_; }
  // A checkpoint to commit, stamped with the source it was streamed from.
  warehouse::Checkpoint FromThisSource(warehouse::Checkpoint c) const;

  // Why the slot is gone, from the source RAW was streamed from (the checkpoint's) and
  // the one reached now: a failover (same system, newer timeline), another database
  // cluster (another system identifier: a wrong URL, or a restore), or a slot dropped
  // on the same server.
  enum class SlotLoss { kFailover, kOtherSystem, kDropped, kUnknown };
  SlotLoss WhySlotIsGone(const warehouse::Checkpoint& c) const;
  std::string SlotLossText(const warehouse::Checkpoint& c) const;

  // The publication first, then the slot: a change decoded between the two would
  // break the slot (PLATFORM-NOTES.md). Creates the publication when missing.
  Status EnsurePublication();
  pdv::Result<bool> SlotExists();
  Status DropSlot();
  // Call it holding the lease: a walsender still streaming our slot belongs to a former
  // holder (killed, or cut off and not yet timed out). Ends it and waits (up to 5 s, or
  // `stop`) for the slot to be free; Ok even if it is not (START_REPLICATION then says
  // what is wrong). Fails on the source's error.
  Status TakeFromFormerHolder(std::stop_token stop);

 private:
  const CdcOptions& options_;
  Logger& log_;
  pg::Connection& source_;
  ReplicationConnection::SystemIdentity identity_;
};

}  // namespace pdv::cdc
