#pragma once

// The process's open-file limit, for servers that must keep accepting through
// descriptor exhaustion (ARCHITECTURE.md, Faults).

#include <cstddef>
#include <cstdint>

namespace pdv {

struct FdLimit {
  uint64_t soft = 0;
  uint64_t hard = 0;
};

// Raises this process's soft RLIMIT_NOFILE to its hard limit and returns the limits
// after. Process-wide: main calls it once at start; never fails (keeps the old soft
// limit if the kernel refuses).
FdLimit RaiseFdLimit();
// The limits as they are now.
FdLimit CurrentFdLimit();

// The largest connection count not above `wanted` that leaves `reserve` descriptors of
// `limit.soft` for everything else (listeners, Redis, logs); at least 1.
size_t ConnectionsWithin(const FdLimit& limit, size_t wanted, size_t reserve);

}  // namespace pdv
