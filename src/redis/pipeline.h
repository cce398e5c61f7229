#pragma once

// Pipelining over redis::Client: commands queued with Add, their replies collected in
// order with Drain, a round trip for all of them. Owns nothing but the count of replies
// still to come; the client is borrowed.

#include <cstddef>
#include <functional>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "redis/client.h"

namespace pdv::redis {

// Not thread-safe: while a pipeline has replies pending, nothing else may use its client
// (another command would read one of them as its own). The client must outlive it.
class Pipeline {
 public:
  explicit Pipeline(Client& client) : client_(client) {}
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;
  // Replies still pending are collected (and dropped), so the client stays in step with
  // its server: on a cluster, queued commands are sent then.
  ~Pipeline();

  // Queues one command (binary-safe arguments, copied or sent before Add returns).
  void Add(const std::vector<std::string_view>& args);
  size_t pending() const { return pending_; }

  // Collects every pending reply; `each` (optional) sees the successful ones in order
  // until one fails. Returns the first failure: an error reply, `each`'s, or a lost
  // connection (which ends the drain at once: no other reply will come).
  Status Drain(const std::function<Status(Reply&)>& each = {});
  // The same, with `each` seeing every reply in order, error replies included; the first
  // failure of `each` is returned.
  Status DrainEach(const std::function<Status(Result<Reply>&)>& each);

 private:
  Client& client_;
  size_t pending_ = 0;
};

}  // namespace pdv::redis
