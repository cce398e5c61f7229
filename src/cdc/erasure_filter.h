#pragma once

// The erasure filter: which changes and snapshot rows never reach RAW because their
// cliente_id is in the erasure register (common/erasure.h): the warehouse's
// platform.erasure_register and, when configured, the register's file outside the
// warehouse (common/erasure_register_file.h), which a restore of the warehouse cannot
// roll back. Holds the HMACs seen so far and counts what it left out. Internal to
// src/cdc/.

#include <sys/types.h>

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
  // `register_file`: "" for the warehouse's register only.
  explicit ErasureFilter(std::string erasure_key, std::string register_file = {})
      : erasure_key_(std::move(erasure_key)), register_file_(std::move(register_file)) {}

  // Reads the register's entries added since the last look (the file again when it
  // changed). Call it in the open batch's transaction, after its subject write lock
  // (BeginBatch), so that an erasure either sees the batch committed or the batch sees
  // the erasure (forget writes the file before the warehouse). Fails on the warehouse's
  // error, on a register file that cannot be read whole (its file:line), or when the
  // register lists anyone and there is no erasure key.
  Status Refresh(warehouse::Warehouse& wh);
  bool IsErased(std::string_view cliente_id) const;
  // `c` belongs to an erased customer (a truncate never does); counted when it does.
  bool LeavesOut(const Change& c);
  uint64_t left_out() const { return left_out_; }

  // The change's cliente_id ("" if it has none: a truncate).
  static std::string_view SubjectOf(const Change& c);

 private:
  Status RefreshFromFile();

  std::string erasure_key_;
  std::string register_file_;
  std::unordered_set<std::string> erased_;  // the register's cliente_id HMACs
  int64_t seq_ = 0;
  uint64_t left_out_ = 0;
  // The file as last read (an append changes its size), so that an unchanged file is
  // one stat(2) per batch.
  off_t file_size_ = -1;
  ino_t file_inode_ = 0;
};

}  // namespace pdv::cdc
