#pragma once

// The erasure filter: which changes and snapshot rows never reach RAW because their
// cliente_id is in the erasure register (common/erasure.h). Holds the register's HMACs
// seen so far and counts what it left out. Internal to src/cdc/.

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>

#include "cdc/change.h"
#include "common/status.h"
#include "warehouse/warehouse.h"

namespace pdv::cdc {

// Borrows nothing; not thread-safe (the session's thread).
class ErasureFilter {
 public:
  explicit ErasureFilter(std::string erasure_key) : erasure_key_(std::move(erasure_key)) {}

  // Reads the register's entries added since the last look. Call it in the open batch's
  // transaction, after its subject write lock (BeginBatch), so that an erasure either
  // sees the batch committed or the batch sees the erasure. Fails on the warehouse's
  // error, or when the register lists anyone and there is no erasure key.
  Status Refresh(warehouse::Warehouse& wh);
  bool IsErased(std::string_view cliente_id) const;
  // `c` belongs to an erased customer (a truncate never does); counted when it does.
  bool LeavesOut(const Change& c);
  uint64_t left_out() const { return left_out_; }

  // The change's cliente_id ("" if it has none: a truncate).
  static std::string_view SubjectOf(const Change& c);

 private:
  std::string erasure_key_;
  std::unordered_set<std::string> erased_;  // the register's cliente_id HMACs
  int64_t seq_ = 0;
  uint64_t left_out_ = 0;
};

}  // namespace pdv::cdc
