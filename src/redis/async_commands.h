#pragma once

// What the API's event loops need of Redis, whatever its shape: one server
// (AsyncClient) or a Redis Cluster (AsyncCluster).

#include <functional>
#include <string_view>
#include <vector>

#include "common/status.h"

struct redisReply;

namespace pdv::redis {

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
};

}  // namespace pdv::redis
