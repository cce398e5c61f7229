#pragma once

// Batching and flushing to the warehouse: the open RAW batch, the columns RAW has (a
// column added at the source joins RAW before the rows that carry it), each change as a
// RAW row (erased customers left out, unchanged TOASTed values carried forward), and the
// commit of a batch with its checkpoint when it is full or the stream says so. Owns the
// session's checkpoint: what RAW has durably. Internal to src/cdc/.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cdc/cdc.h"
#include "cdc/change.h"
#include "cdc/erasure_filter.h"
#include "cdc/metrics.h"
#include "cdc/slot_manager.h"
#include "cdc/toast_carry.h"
#include "common/log.h"
#include "common/status.h"
#include "warehouse/warehouse.h"

namespace pdv::cdc {

// Borrows everything it is given (the session's, which outlive it). While a batch is
// open it holds the warehouse's connection: make no other call on that Warehouse then.
// Not thread-safe (the session's thread).
class RawWriter {
 public:
  // Called after each batch commit, the new checkpoint() durable: the session
  // acknowledges it to the source. Its failure is Flush's.
  using Committed = std::function<Status()>;
  RawWriter(const CdcOptions& options, Logger& log, Metrics& metrics, warehouse::Warehouse& wh,
            const SlotManager& slot, ErasureFilter& erasure, Committed committed);

  // What RAW has durably (from the warehouse, a snapshot or the last batch).
  const warehouse::Checkpoint& checkpoint() const { return checkpoint_; }
  void set_checkpoint(const warehouse::Checkpoint& c) { checkpoint_ = c; }
  // A snapshot made RAW with these columns and its key index.
  void SetRawColumns(std::vector<warehouse::RawColumn> columns);

  // Columns added at the source join RAW before the rows that carry them: in the open
  // batch's own transaction when there is one, else with EnsureRawTable.
  Status PrepareColumns(std::span<const std::shared_ptr<const Relation>> relations);
  // One change into the open batch (opened if needed) at (lsn, seq); an erased
  // customer's change is left out. PrepareColumns must have covered its relation.
  Status AddRow(const Change& c, uint64_t lsn, int64_t committed_us, int64_t seq);
  // A source transaction's `rows` rows are all in the batch: the batch's checkpoint moves
  // to its commit, and a full batch commits.
  Status TransactionAdded(uint64_t commit_lsn, uint64_t end_lsn, int64_t committed_us,
                          int64_t rows);
  // Commits the open batch (if any) with its checkpoint, then calls `committed`.
  Status Flush();

  bool batch_open() const { return batch_ != nullptr; }
  std::chrono::steady_clock::time_point batch_started() const { return batch_started_; }
  // Source commit time (Unix µs) of the oldest transaction in the open batch, if any.
  std::optional<int64_t> oldest_commit_us() const;
  uint64_t rows_written() const { return rows_written_; }
  uint64_t batches() const { return batches_; }

 private:
  const std::vector<int>& RawIndex(const Relation& rel);
  Status Fields(const Change& c, std::string* out);

  const CdcOptions& options_;
  Logger& log_;
  Metrics& metrics_;
  warehouse::Warehouse& wh_;
  const SlotManager& slot_;
  ErasureFilter& erasure_;
  Committed committed_;
  ToastCarry toast_;
  warehouse::Checkpoint checkpoint_;
  std::vector<warehouse::RawColumn> raw_columns_;
  bool raw_ready_ = false;
  std::unique_ptr<warehouse::RawBatch> batch_;
  warehouse::Checkpoint batch_checkpoint_;
  std::vector<int64_t> batch_commit_times_;  // source commit times (Unix µs) in the batch
  std::chrono::steady_clock::time_point batch_started_;
  std::string row_fields_;  // reused for each row
  uint64_t rows_written_ = 0, batches_ = 0;
};

}  // namespace pdv::cdc
