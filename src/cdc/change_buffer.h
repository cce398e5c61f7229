#pragma once

// The changes of one streamed transaction until its commit arrives. Internal to src/cdc/.

#include <cstdio>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cdc/change.h"
#include "common/status.h"

namespace pdv::cdc {

// Writes a streamed transaction's changes to an unnamed temporary file (O_TMPFILE) in
// `spill_dir`, opened at the first change, and reads them back at its commit: memory is
// bounded whatever the transaction's size. The file has no name, so it disappears with
// the process, SIGKILL included; nothing is left to clean up. Move-only; not thread-safe.
class ChangeBuffer {
 public:
  explicit ChangeBuffer(std::string spill_dir);
  ChangeBuffer(ChangeBuffer&&) noexcept = default;
  ChangeBuffer& operator=(ChangeBuffer&&) noexcept = default;

  // Fails only when the file fails (disk full, spill_dir missing): the message names the
  // directory.
  Status Add(const Change& change);
  // Forgets the changes of an aborted subtransaction (skipped when read back).
  void DropSubtransaction(uint32_t subxid) { dropped_subxids_.insert(subxid); }
  // Calls `change` with each change in arrival order (dropped subtransactions left out),
  // stopping at the first error. Reads the file back one change at a time.
  Status ForEach(const std::function<Status(const Change&)>& change);
  // The relations the changes refer to, each once.
  const std::vector<std::shared_ptr<const Relation>>& relations() const { return relations_; }
  bool empty() const { return file_ == nullptr; }

 private:
  struct Close {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  Status Open();
  uint32_t RelationIndex(const std::shared_ptr<const Relation>& relation);

  std::string spill_dir_;
  std::vector<std::shared_ptr<const Relation>> relations_;
  std::set<uint32_t> dropped_subxids_;
  std::unique_ptr<std::FILE, Close> file_;
};

}  // namespace pdv::cdc
