#pragma once

// The changes of one source transaction until its commit arrives. Internal to src/cdc/.

#include <cstdio>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cdc/change.h"
#include "common/status.h"

namespace pdv::cdc {

// Holds a transaction's changes in memory up to `memory_limit` bytes (an estimate of
// what they occupy), then moves them to an unnamed temporary file (O_TMPFILE) in
// `spill_dir` and appends the rest there: memory is bounded by configuration, never by
// the size of a transaction. The file has no name, so it disappears with the process,
// SIGKILL included; nothing is left to clean up. Move-only; not thread-safe.
class ChangeBuffer {
 public:
  ChangeBuffer(size_t memory_limit, std::string spill_dir);
  ChangeBuffer(ChangeBuffer&&) noexcept = default;
  ChangeBuffer& operator=(ChangeBuffer&&) noexcept = default;

  // Fails only when spilling fails (disk full, spill_dir missing): the message names the
  // directory.
  Status Add(Change change);
  // Forgets the changes of an aborted subtransaction.
  void DropSubtransaction(uint32_t subxid);
  // Calls `change` with each change in arrival order (dropped subtransactions left out),
  // stopping at the first error. Reads a spilled buffer back one change at a time.
  Status ForEach(const std::function<Status(const Change&)>& change);
  // The relations the changes refer to, each once.
  const std::vector<std::shared_ptr<const Relation>>& relations() const { return relations_; }
  // Changes added (after a dropped subtransaction of a spilled buffer: an upper bound).
  size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  bool spilled() const { return file_ != nullptr; }

 private:
  struct Close {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  Status Spill();
  Status Write(const Change& change);
  uint32_t RelationIndex(const std::shared_ptr<const Relation>& relation);

  size_t memory_limit_;
  std::string spill_dir_;
  std::vector<Change> changes_;  // in memory, before spilling
  size_t memory_bytes_ = 0;
  size_t count_ = 0;
  std::vector<std::shared_ptr<const Relation>> relations_;
  std::set<uint32_t> dropped_subxids_;  // spilled changes of these are skipped
  std::unique_ptr<std::FILE, Close> file_;
};

// Estimated bytes a change occupies in memory.
size_t ChangeBytes(const Change& change);

}  // namespace pdv::cdc
