#pragma once

// What the API's event loops need of Redis, whatever its shape: one server
// (AsyncClient), a Redis Cluster (AsyncCluster) or a primary named by Sentinels
// (AsyncSentinel).

#include <functional>
#include <string_view>
#include <vector>

#include "common/status.h"

struct redisReply;

namespace pdv::redis {

// Client-side caching: what Redis says about keys this client read.
struct TrackingHandlers {
  std::function<void(std::string_view key)> on_key;  // the key changed
  std::function<void()> on_reset;                    // anything read before may have changed
};

class AsyncCommands {
 public:
  // Reply view: type, integer, string (valid during the callback), elements.
  using Callback = std::function<void(const pdv::Status&, redisReply*)>;
  virtual ~AsyncCommands() = default;
  // Calls `done` once, on the loop (maybe before returning, on a failure).
  virtual void Command(const std::vector<std::string_view>& args, Callback done) = 0;
  virtual bool connected() const = 0;
  // Closes every connection for good (shutdown): pending commands fail.
  virtual void Close() = 0;

  // Tracks this client's reads on every server it reads from (CLIENT TRACKING with
  // REDIRECT to an invalidation connection to the same server, as RESP2 has no push
  // replies), now and for connections made later. A new data connection, a dropped
  // invalidation connection, a new primary or a new slot map is an on_reset.
  virtual void EnableTracking(TrackingHandlers handlers) = 0;
  // Whether a read of `key` sent now will be tracked, after applying the invalidations
  // its server sent before the request being answered arrived (read once per loop turn;
  // a write Redis acknowledged is then never answered from a copy). Re-enables tracking where the
  // invalidation connection came back.
  virtual bool Tracked(std::string_view key) = 0;
  // The same without side effects: for the reply of a read, before keeping a copy.
  virtual bool TrackingOn(std::string_view key) const = 0;
};

}  // namespace pdv::redis
