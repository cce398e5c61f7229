#pragma once

// After the source failed over (Patroni promoted a replica that has a copy of the
// permanent slot): what RAW has from the old primary that the new one never got, said in
// a log line, and RAW reconciled to the new source by a targeted re-read of the keys
// involved, never a whole snapshot. Internal to src/cdc/.
//
// A promoted replica starts a new timeline at its switch point X: everything the old
// primary wrote before X it has, everything from X on is gone from the source. RAW's
// checkpoint C (a commit LSN on the old timeline) is then either
// - below X: RAW has nothing the new source lacks. The stream goes on from C on the
//   copied slot (whose position may be behind C: the reader skips by LSN what RAW has).
// - at or above X: RAW has changes in [X, C] that never happened on the new source, and
//   LSNs from X on mean other changes on the new timeline. The new source's state of
//   every key RAW changed from X on, and of every key the new timeline changed before
//   the re-read's position S, is read in one exported snapshot at S (> C, so it sorts
//   after everything RAW has) and appended where it differs from RAW's latest state
//   (missing keys get 'd' rows), with the checkpoint at S, in one warehouse transaction;
//   the stream goes on from S. Changes of the new timeline before S reach RAW as that
//   state (each key's latest), not one row each.

#include <optional>
#include <stop_token>

#include "cdc/snapshot.h"
#include "common/status.h"
#include "warehouse/warehouse.h"

namespace pdv::cdc {

// nullopt when RAW goes on from `checkpoint` as it is (same timeline, or a failover that
// lost nothing RAW has: logged); else the reconciled checkpoint (at S) and RAW's columns.
// Fails on the servers' errors (nothing committed then: the next session does it again)
// and when the source's timeline history does not list the checkpoint's timeline.
// Leaves `ctx.source` in no transaction on success.
pdv::Result<std::optional<SnapshotTaken>> ReconcileAfterFailover(
    const SnapshotContext& ctx, const warehouse::Checkpoint& checkpoint, std::stop_token stop);

}  // namespace pdv::cdc
