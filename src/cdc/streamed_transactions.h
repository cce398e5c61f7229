#pragma once

// The spill of huge transactions: with cdc.streaming on, the walsender sends a
// transaction larger than its logical_decoding_work_mem in blocks before it commits.
// Their changes go, by transaction id, into buffers that spill to disk at once
// (ChangeBuffer), until Stream Commit hands one over or Stream Abort drops it (or one of
// its subtransactions). Internal to src/cdc/.

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "cdc/change.h"
#include "cdc/change_buffer.h"
#include "common/status.h"

namespace pdv::cdc {

// Not thread-safe (the session's thread).
class StreamedTransactions {
 public:
  // `spill_dir`: cdc.spill_dir ("": $TMPDIR, else /tmp).
  explicit StreamedTransactions(std::string spill_dir);

  // Stream Start: the changes that follow belong to transaction `xid`.
  void StartBlock(uint32_t xid) { block_xid_ = xid; }
  // A change of the current block's transaction. Fails when its spill file does.
  Status Add(const Change& change);
  // Stream Abort of `subxid` (the whole transaction when it equals `xid`).
  void Abort(uint32_t xid, uint32_t subxid);
  // Stream Commit: the transaction's changes, nullopt when none of ours were in it.
  std::optional<ChangeBuffer> Take(uint32_t xid);
  bool empty() const { return buffers_.empty(); }

 private:
  std::string spill_dir_;
  std::map<uint32_t, ChangeBuffer> buffers_;
  uint32_t block_xid_ = 0;
};

}  // namespace pdv::cdc
