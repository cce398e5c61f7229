#pragma once

// The synchronous Redis client the stages use: one server (redis://, rediss://), the
// primary a set of Sentinels names (redis+sentinel://), or a Redis Cluster
// (redis+cluster://), through the same calls.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/redis_url.h"
#include "common/status.h"
#include "redis/endpoint.h"
#include "redis/errors.h"
#include "redis/reply.h"

namespace pdv::redis {

// Not thread-safe; move-only. Errors carry code kConnectionError when a connection is gone
// (reconnect and retry) and kReplyError for an error reply from the server
// (redis/errors.h). A redis:// URL naming a cluster node fails with an error that says so.
//
// On a cluster: each command goes to the master of its key's slot (from CLUSTER SLOTS,
// refreshed on MOVED; ASK is followed once with ASKING); a pipeline is sent per node and
// its replies returned in the order of the commands; SCRIPT LOAD reaches every master;
// UNLINK, DEL and EXISTS of keys in several slots are split per key (their counts added).
// Commands that name no key (PING, PUBLISH, CONFIG GET...) go to any master.
class Client {
 public:
  static pdv::Result<Client> Connect(const std::string& url,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(2));
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();

  // Runs one command (binary-safe arguments).
  pdv::Result<Reply> Command(const std::vector<std::string_view>& args);
  // Pipelining: Append any number of commands, then GetReply once for each, in order.
  void Append(const std::vector<std::string_view>& args);
  pdv::Result<Reply> GetReply();
  bool cluster() const;

  // Returns once every replica that could be promoted has acknowledged this client's
  // writes so far: on each master (every master of a cluster), WAIT for the replicas its
  // ROLE lists as connected, less those the cluster already flags as failing (fail or
  // fail?). Replication is asynchronous: without this, a failover may promote a replica
  // that lacks acknowledged writes, and a position stored after them would skip them for
  // good. A replica that has not acknowledged within `timeout` is an error with code
  // kConnectionError (retry later); masters without replicas return at once.
  pdv::Status WaitForReplicas(std::chrono::milliseconds timeout);

 private:
  struct State;
  explicit Client(std::unique_ptr<State> state);
  friend pdv::Result<std::vector<std::string>> ClusterSlotOwners(const Endpoint&,
                                                                 std::chrono::milliseconds,
                                                                 const std::vector<std::string>&);
  std::unique_ptr<State> state_;
};

// The master ("host:port") of each of the 16384 slots of a cluster, from the first of
// `nodes` (then the endpoint's seeds) that answers CLUSTER SLOTS. Blocking: the
// asynchronous client runs it off its loop.
pdv::Result<std::vector<std::string>> ClusterSlotOwners(const Endpoint& endpoint,
                                                        std::chrono::milliseconds timeout,
                                                        const std::vector<std::string>& nodes);

// The address of the primary that the endpoint's Sentinels name (the first Sentinel that
// answers), once it says it is a primary (ROLE): never a replica, nor a former primary
// that came back before the Sentinels demoted it. Blocking.
pdv::Result<std::pair<std::string, int>> SentinelPrimary(const Endpoint& endpoint,
                                                         std::chrono::milliseconds timeout);

}  // namespace pdv::redis
