#pragma once

// TOAST carry-forward: an update that leaves a TOASTed column unchanged sends no value
// for it ('u' in pgoutput), and RAW needs the row whole. This keeps the open batch's
// recent large rows by key, bounded in memory, and finds the earlier value there or,
// past it, in RAW through the batch. Internal to src/cdc/.

#include <cstddef>
#include <string>
#include <unordered_map>

#include "cdc/change.h"
#include "common/status.h"
#include "warehouse/warehouse.h"

namespace pdv::cdc {

// Not thread-safe (the session's thread). Forget() when the batch it describes ends.
class ToastCarry {
 public:
  // `memory_bytes`: cdc.transaction_memory_mb; `table`: for error messages.
  ToastCarry(size_t memory_bytes, std::string table)
      : memory_bytes_(memory_bytes), table_(std::move(table)) {}

  // The change's key: its key columns' values, each followed by \x1f.
  static std::string KeyOf(const Change& c);
  // Keeps the batch's latest row per key within the memory bound: past it the memory is
  // dropped, and CarriedForward asks the batch instead (slower, as right). Only a version
  // with a value stored out of line (TOAST: the row past ~2 kB, under the default
  // toast_tuple_target) can be referred to by a later 'u', so smaller ones are not kept:
  // a lookup in the batch still finds them (tables with a smaller target). A deletion,
  // or a small version, drops the key's entry. `fields`: the row as COPY text.
  void Remember(char op, const std::string& key, const std::string& fields);
  void Forget();
  // The value (COPY text) of RAW column `r`, named `column`, for the row with `key`
  // before change `c`: from an earlier change in this batch, else from RAW as `batch`
  // sees it. An error when RAW has no earlier value, or on the batch's error.
  pdv::Result<std::string> CarriedForward(const Change& c, const std::string& key, size_t r,
                                          const std::string& column, warehouse::RawBatch& batch);

 private:
  size_t memory_bytes_;
  std::string table_;
  std::unordered_map<std::string, std::string> rows_;  // key -> fields, this batch
  size_t rows_bytes_ = 0;
};

}  // namespace pdv::cdc
