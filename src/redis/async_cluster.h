#pragma once

// clang-format off
#include <utility>  // before any Asio header under C++20 (PLATFORM-NOTES.md)
// clang-format on

#include <boost/asio.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/redis_url.h"
#include "redis/async_client.h"
#include "redis/async_commands.h"
#include "redis/background_refresher.h"

namespace pdv::redis {

// A Redis Cluster for one event loop: one pipelined AsyncClient per master, each command
// sent to its key's slot's master. The slot map comes from CLUSTER SLOTS (the same code
// as the synchronous client's, run off the loop by a BackgroundRefresher) at start, on MOVED, and
// while a node is unreachable (at most every 200 ms): after a failover the loop finds
// the promoted replica by itself. A watch every 500 ms refreshes it too while a master
// of the map is disconnected, and every 5 s anyway, so a loop that no command sends to
// the lost master (an API replica its balancer took out of service because /ready
// failed) still finds the new one. MOVED is followed once at once; ASK with ASKING.
// Commands naming no key go to any master. Lives on one io_context thread.
class AsyncCluster : public AsyncCommands, public std::enable_shared_from_this<AsyncCluster> {
 public:
  AsyncCluster(boost::asio::io_context& io, Endpoint endpoint, std::chrono::milliseconds timeout);
  ~AsyncCluster() override;
  // Fetches the slot map (asynchronously); commands before it is known fail as
  // unavailable.
  void Start();
  void Command(const std::vector<std::string_view>& args, Callback done) override;
  bool connected() const override;
  void Close() override;
  // Per node: each master's connection tracked with its own invalidation link; a new
  // slot map is an on_reset (a key may have a new master, whose link knows nothing of
  // what was read from the old one).
  void EnableTracking(TrackingHandlers handlers) override;
  bool Tracked(std::string_view key) override;
  bool TrackingOn(std::string_view key) const override;

 private:
  AsyncClient& Node(const std::string& name);
  // The connection to the master of `key`'s slot, if this loop has one.
  AsyncClient* OwnerClient(std::string_view key) const;
  void Refresh();
  void Watch();
  void ReconnectMasters();
  bool AllMastersConnected() const;
  void Send(const std::string& node, std::vector<std::string> args, Callback done, int hops);

  boost::asio::io_context& io_;
  Endpoint endpoint_;
  std::chrono::milliseconds timeout_;
  std::vector<std::string> slot_owner_;
  std::map<std::string, std::shared_ptr<AsyncClient>> nodes_;
  boost::asio::steady_timer watch_;
  std::optional<TrackingHandlers> tracking_;
  bool closed_ = false;
  BackgroundRefresher refresher_;  // CLUSTER SLOTS; the last member: joined first
};

}  // namespace pdv::redis
