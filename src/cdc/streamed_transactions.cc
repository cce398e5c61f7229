#include "cdc/streamed_transactions.h"

#include <filesystem>

namespace pdv::cdc {

StreamedTransactions::StreamedTransactions(std::string spill_dir)
    : spill_dir_(std::move(spill_dir)) {}

Status StreamedTransactions::Add(const Change& change) {
  auto it = buffers_.find(block_xid_);
  if (it == buffers_.end()) {
    // $TMPDIR is looked at only when a transaction is streamed (it may be unset or wrong
    // where nothing ever is).
    std::string dir =
        spill_dir_.empty() ? std::filesystem::temp_directory_path().string() : spill_dir_;
    it = buffers_.emplace(block_xid_, ChangeBuffer(std::move(dir))).first;
  }
  return it->second.Add(change);
}

void StreamedTransactions::Abort(uint32_t xid, uint32_t subxid) {
  if (xid == subxid) {
    buffers_.erase(xid);
  } else if (auto it = buffers_.find(xid); it != buffers_.end()) {
    it->second.DropSubtransaction(subxid);
  }
}

std::optional<ChangeBuffer> StreamedTransactions::Take(uint32_t xid) {
  auto it = buffers_.find(xid);
  if (it == buffers_.end()) return std::nullopt;
  ChangeBuffer txn = std::move(it->second);
  buffers_.erase(it);
  return txn;
}

}  // namespace pdv::cdc
