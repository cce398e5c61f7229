#pragma once

// Internal to src/cache: the two syncs on connections a caller keeps (the watch keeps
// them for as long as it holds its lease; connecting to both stores anew took most of a
// small sync's time), and pdv:meta's fenced write.

#include <stop_token>
#include <string>
#include <vector>

#include "cache/cache.h"
#include "cache/scripts.h"
#include "common/log.h"
#include "common/status.h"
#include "redis/client.h"
#include "warehouse/warehouse.h"

namespace pdv::cache {

// Borrowed connections: `scripts` are `redis`'s. A sync uses them alone while it runs
// (the full load from two threads: the warehouse from the caller's, Redis from a sender).
struct SyncConnections {
  redis::Client& redis;
  warehouse::Warehouse& warehouse;
  Scripts& scripts;
};

// SyncFull and SyncIncremental (cache.h) on `c`: what they promise, and the same errors.
pdv::Result<SyncResult> SyncFullOn(const SyncConnections& c, const CacheOptions& options,
                                   Logger& log, std::stop_token stop);
pdv::Result<SyncResult> SyncIncrementalOn(const SyncConnections& c, const CacheOptions& options,
                                          Logger& log, std::stop_token stop);

}  // namespace pdv::cache
