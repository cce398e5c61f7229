#pragma once

// clang-format off
#include <utility>  // before any Asio header under C++20 (PLATFORM-NOTES.md)
// clang-format on

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "redis/async_commands.h"
#include "redis/client.h"
#include "redis/endpoint.h"

namespace pdv::redis {

class InvalidationLink;

// One Redis connection (plain or TLS: rediss://) driven by an Asio io_context: commands from
// concurrent requests are written back to back (pipelined) and their replies, parsed by hiredis's
// reader, handed to callbacks in order. Lives on one io_context thread; not thread-safe. A command
// not answered within its deadline, or any connection failure, fails every pending command with a
// Status, and the next command reconnects (with a short backoff). Error codes as the synchronous
// client's (redis/errors.h); a redirection from a server the endpoint does not call a cluster's
// node (a redis:// URL naming one) is an error that says so.
class AsyncClient : public AsyncCommands, public std::enable_shared_from_this<AsyncClient> {
 public:
  // Reply view: type, integer, string (valid during the callback), elements.
  using Callback = AsyncCommands::Callback;

  AsyncClient(boost::asio::io_context& io, Endpoint endpoint, std::chrono::milliseconds timeout);
  ~AsyncClient();

  void Command(const std::vector<std::string_view>& args, Callback done) override;
  bool connected() const override { return state_ == State::kConnected; }
  // Closes the connection for good (shutdown): pending commands fail.
  void Close() override;
  void EnableTracking(TrackingHandlers handlers) override;
  bool Tracked(std::string_view key) override;
  bool TrackingOn(std::string_view key) const override;
  uint64_t errors() const { return errors_; }

 private:
  enum class State { kDisconnected, kConnecting, kConnected };
  void Connect();
  void Connected();
  void Flush();
  void Read();
  void Fail(const pdv::Status& why);
  void ArmTimer();
  // CLIENT TRACKING on REDIRECT <the link's id>, unless one is in flight.
  void RequestTracking();
  boost::asio::ip::tcp::socket& Socket() { return tls_ ? tls_->next_layer() : socket_; }

  boost::asio::io_context& io_;
  Endpoint endpoint_;
  std::chrono::milliseconds timeout_;
  boost::asio::ip::tcp::socket socket_;
  // rediss://: the TLS context, and a stream over a fresh socket for each connection.
  std::unique_ptr<boost::asio::ssl::context> tls_context_;
  std::unique_ptr<boost::asio::ssl::stream<boost::asio::ip::tcp::socket>> tls_;
  boost::asio::steady_timer timer_;
  State state_ = State::kDisconnected;
  std::chrono::steady_clock::time_point retry_after_{};
  std::optional<ReplyReader> reader_;  // one per connection
  std::string out_, writing_;
  bool write_in_flight_ = false;
  bool flush_posted_ = false;
  std::array<char, 16384> in_{};
  struct Pending {
    Callback done;
    std::chrono::steady_clock::time_point deadline;
  };
  std::deque<Pending> pending_;     // sent or queued, in order
  std::deque<std::string> queued_;  // formatted commands waiting for the connection
  uint64_t errors_ = 0;
  bool closed_ = false;
  pdv::Status closed_error_;  // a TLS context that could not be made: every connect fails
  // Incremented per connection: completions of a closed socket's operations are ignored.
  uint64_t generation_ = 0;
  // Tracking (EnableTracking): this server's invalidation link, and whether the current
  // connection's reads are tracked with redirection to the link as it is now (epoch).
  TrackingHandlers tracking_;
  std::shared_ptr<InvalidationLink> link_;
  bool tracking_ready_ = false, tracking_pending_ = false;
  uint64_t tracking_epoch_ = 0;
  bool drained_this_turn_ = false;  // the link was read during this loop turn
};

// A connection subscribed to Redis's invalidation channel (client-side caching with
// REDIRECT, as RESP2 has no push replies). Reports invalidated keys and full flushes;
// when it drops, reports a flush (nothing cached can be trusted) and reconnects.
// Lives on one io_context thread.
class InvalidationLink : public std::enable_shared_from_this<InvalidationLink> {
 public:
  InvalidationLink(boost::asio::io_context& io, Endpoint endpoint,
                   std::function<void(std::string_view key)> on_key,
                   std::function<void()> on_flush);
  ~InvalidationLink();
  void Start();
  void Stop();
  // Processes the invalidations already received, without waiting: called before a
  // cached answer is served, so a write Redis acknowledged is never answered stale.
  void Drain();
  bool up() const { return up_; }
  long long client_id() const { return client_id_; }
  // Changes each time the link comes up (a new client id to redirect to).
  uint64_t epoch() const { return epoch_; }

 private:
  void Connect();
  void Hello();
  void Wait();
  void Fail();
  boost::asio::ip::tcp::socket& Socket() { return tls_ ? tls_->next_layer() : socket_; }

  boost::asio::io_context& io_;
  Endpoint endpoint_;
  std::function<void(std::string_view)> on_key_;
  std::function<void()> on_flush_;
  boost::asio::ip::tcp::socket socket_;
  std::unique_ptr<boost::asio::ssl::context> tls_context_;
  std::unique_ptr<boost::asio::ssl::stream<boost::asio::ip::tcp::socket>> tls_;
  boost::asio::steady_timer retry_;
  std::optional<ReplyReader> reader_;  // one per connection
  bool up_ = false, stopped_ = false;
  int replies_ = 0;  // CLIENT ID, then the SUBSCRIBE confirmation
  long long client_id_ = 0;
  uint64_t epoch_ = 0;
  uint64_t generation_ = 0;
};

}  // namespace pdv::redis
