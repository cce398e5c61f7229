#pragma once

// clang-format off
#include <utility>  // before any Asio header under C++20 (PLATFORM-NOTES.md)
// clang-format on

#include <boost/asio.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "common/redis_url.h"
#include "redis/async_client.h"
#include "redis/async_commands.h"
#include "redis/background_refresher.h"

namespace pdv::redis {

// The primary a set of Sentinels names, for one event loop: one pipelined AsyncClient to
// it. Who the primary is comes from the synchronous client's SentinelPrimary (run off
// the loop by a BackgroundRefresher) at start and whenever the connection fails (at most every
// 200 ms), so after a failover the loop moves to the promoted replica by itself; until
// then commands fail at once as unavailable. Lives on one io_context thread.
class AsyncSentinel : public AsyncCommands, public std::enable_shared_from_this<AsyncSentinel> {
 public:
  AsyncSentinel(boost::asio::io_context& io, Endpoint endpoint, std::chrono::milliseconds timeout);
  ~AsyncSentinel() override;
  void Start();
  void Command(const std::vector<std::string_view>& args, Callback done) override;
  bool connected() const override { return primary_ && primary_->connected(); }
  void Close() override;
  // The primary's connection tracked with its own invalidation link; a new primary is an
  // on_reset.
  void EnableTracking(TrackingHandlers handlers) override;
  bool Tracked(std::string_view key) override { return primary_ && primary_->Tracked(key); }
  bool TrackingOn(std::string_view key) const override {
    return primary_ && primary_->TrackingOn(key);
  }

 private:
  void Resolve();

  boost::asio::io_context& io_;
  Endpoint endpoint_;
  std::chrono::milliseconds timeout_;
  std::shared_ptr<AsyncClient> primary_;
  std::string primary_address_;
  std::optional<TrackingHandlers> tracking_;
  BackgroundRefresher refresher_;  // asks the Sentinels; the last member: joined first
};

}  // namespace pdv::redis
