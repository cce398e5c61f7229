#pragma once

// One event loop's reading of the customer data in Redis (CustomerStore): the cache
// layout in use (version and bucket bits, re-read every second and whenever a lookup
// needs it), the near-cache kept coherent by Redis tracking, and the lookups of a record
// by CPF hash and by cliente_id, each telling found, not found, not loaded or
// unavailable. One per event loop; not thread-safe.

// clang-format off
#include <utility>  // before any Asio header under C++20 (PLATFORM-NOTES.md)
// clang-format on

#include <array>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "api/near_cache.h"
#include "api/shared_state.h"
#include "cache/record.h"
#include "common/status.h"
#include "redis/async_commands.h"

namespace pdv::api {

class CustomerStore {
 public:
  enum class Outcome {
    kFound,        // record is set
    kNotFound,     // the dataset holds no such customer
    kNotLoaded,    // no dataset in Redis (before the first load, or Redis lost it): 503
    kUnavailable,  // Redis failed, or the record did not decode (why): 503
  };
  struct Answer {
    Outcome outcome;
    const cache::CustomerRecord* record = nullptr;  // valid during the callback only
    Status why = Status::Ok();
  };
  using Done = std::function<void(const Answer&)>;
  using Hash = std::array<uint8_t, 32>;

  // Borrows all four (each outlives it); `log_redis_error` is told of a malformed meta.
  CustomerStore(boost::asio::io_context& io, redis::AsyncCommands& redis, SharedState& shared,
                std::function<void(const Status&)> log_redis_error);

  // With options.near_cache, has every server this loop reads from track its reads and
  // turns the near-cache on; once, after the Redis client started.
  void StartNearCache();

  // Re-reads the layout every second until shared.stopping, so a version switch is seen
  // within a second.
  void KeepLayoutFresh();
  // The cache layout in use; nullopt while no dataset is known.
  const std::optional<cache::Layout>& layout() const { return layout_; }
  // Re-reads the layout, then calls `then`; without `then`, only when the last read is
  // old enough (a second with a layout, 20 ms without) and none is in flight.
  void RefreshLayout(std::function<void()> then = {});

  // The record of the CPF whose hash is `hash`: from the near-cache at once when it holds
  // it current, else from Redis. Calls `done` once, maybe before returning; `hold` is
  // kept until then (the session waiting for it).
  void ByHash(const Hash& hash, std::shared_ptr<void> hold, Done done);
  // The record of cliente_id `id` (through the id index, then as ByHash); kNotFound
  // also when the index points at another customer's record.
  void ById(const std::array<uint8_t, 16>& id, std::shared_ptr<void> hold, Done done);

 private:
  // ByHash; `retried` once the layout was re-read for this lookup.
  void Fetch(const Hash& hash, bool retried, std::shared_ptr<void> hold, Done done);

  boost::asio::io_context& io_;
  redis::AsyncCommands& redis_;
  SharedState& shared_;
  std::function<void(const Status&)> log_redis_error_;
  std::optional<cache::Layout> layout_;
  std::chrono::steady_clock::time_point layout_at_{};
  bool layout_refreshing_ = false;
  NearCache near_;
  bool near_cache_on_ = false;
};

}  // namespace pdv::api
