#include "api/worker.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/beast/ssl.hpp>

#include "api/session.h"
#include "redis/async_client.h"
#include "redis/async_cluster.h"
#include "redis/async_sentinel.h"

namespace pdv::api {
namespace {

// One Redis server, the primary Sentinels name, or a cluster.
std::shared_ptr<redis::AsyncCommands> MakeRedis(asio::io_context& io,
                                                const redis::Endpoint& endpoint,
                                                std::chrono::milliseconds timeout) {
  if (endpoint.cluster) return std::make_shared<redis::AsyncCluster>(io, endpoint, timeout);
  if (endpoint.sentinel()) return std::make_shared<redis::AsyncSentinel>(io, endpoint, timeout);
  return std::make_shared<redis::AsyncClient>(io, endpoint, timeout);
}

}  // namespace

Worker::Worker(SharedState& shared, const redis::Endpoint& endpoint)
    : shared_(shared),
      acceptor_(io_),
      redis_(MakeRedis(io_, endpoint, shared.options.redis_timeout)),
      hasher_(shared.options.cpf_key),
      store_(io_, *redis_, shared, [this](const Status& s) { LogRedisError(s); }),
      keys_(*redis_, shared, [this](const Status& s) { LogRedisError(s); }),
      limits_(*redis_, {.rate_per_key = shared.options.rate_per_key,
                        .daily_quota = shared.options.daily_quota_per_key,
                        .loops = shared.loops}),
      addresses_(shared.options.rate_per_ip / std::max(1, shared.loops)) {
  if (auto cluster = std::dynamic_pointer_cast<redis::AsyncCluster>(redis_)) cluster->Start();
  if (auto sentinel = std::dynamic_pointer_cast<redis::AsyncSentinel>(redis_)) sentinel->Start();
  store_.StartNearCache();
}

Status Worker::Listen(const tcp::endpoint& endpoint) {
  boost::system::error_code ec;
  OpenAndBind(acceptor_, endpoint, /*share_port=*/true, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::Error(fmt::format("serve: cannot listen on {}:{}: {}",
                                     endpoint.address().to_string(), endpoint.port(),
                                     ec.message()));
  }
  return Status::Ok();
}

void Worker::Start() {
  Accept();
  store_.KeepLayoutFresh();
  Sweep();
}

uint32_t Worker::Register(const std::shared_ptr<SessionBase>& session) {
  uint32_t slot = deadlines_.Add();
  if (slot >= by_slot_.size()) by_slot_.resize(size_t{slot} + 1);
  by_slot_[slot] = session;
  return slot;
}

void Worker::Unregister(uint32_t slot) {
  deadlines_.Remove(slot);
  by_slot_[slot].reset();
}

std::pair<metrics::Gauge*, metrics::Histogram*> Worker::Count(Route route, unsigned status) {
  auto& slot = counted_[static_cast<size_t>(route) * 1000 + status];
  if (!slot.first) {
    slot = {shared_.Counter(RouteName(route), status), shared_.Latency(RouteName(route), status)};
  }
  return slot;
}

void Worker::LogRedisError(const Status& why) {
  auto now = Clock::now();
  if (now - last_error_log_ < std::chrono::seconds(1)) return;
  last_error_log_ = now;
  shared_.log.Warn("serve_redis_error", {{"error", why.message()}});
}

void Worker::Accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, Socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;  // shutdown
    if (ec) {
      // Out of descriptors or memory (or anything else): wait and accept again; the
      // loop must never end while the process lives.
      uint64_t failures = 0;
      if (accept_errors_.Count(Clock::now(), &failures)) {
        shared_.log.Warn("serve_accept_error",
                         {{"error", ec.message()},
                          {"failures", failures},
                          {"retry_in_ms", AcceptErrors::kRetryDelay.count()}});
      }
      accept_retry_.expires_after(AcceptErrors::kRetryDelay);
      accept_retry_.async_wait([this](boost::system::error_code wec) {
        if (!wec && acceptor_.is_open()) Accept();
      });
      return;
    }
    Admit(std::move(socket));
    Accept();
  });
}

void Worker::Admit(Socket socket) {
  boost::system::error_code peer_ec;
  auto remote = socket.remote_endpoint(peer_ec);
  std::string peer = peer_ec ? std::string() : remote.address().to_string();
  bool refused = false;
  if (++shared_.connections > shared_.max_connections) {
    refused = true;
  } else if (!shared_.address_connections.Acquire(peer)) {
    // One address (a runaway client, or a flood of slow ones) may not take every
    // connection: closed unanswered, as past max_connections.
    shared_.address_connections_refused->Add(1);
    refused = true;
  }
  if (refused) {
    shared_.connections--;
    boost::system::error_code ignored;
    socket.close(ignored);
    return;
  }
  socket.set_option(tcp::no_delay(true));
  if (shared_.tls) {
    std::make_shared<Session<beast::ssl_stream<Socket>>>(*this, std::move(peer), std::move(socket),
                                                         *shared_.tls)
        ->Start();
  } else {
    std::make_shared<Session<Socket>>(*this, std::move(peer), std::move(socket))->Start();
  }
}

void Worker::Stop() {
  asio::post(io_, [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    accept_retry_.cancel();
    for (auto& weak : by_slot_) {
      if (auto s = weak.lock()) s->Shutdown();
    }
    DrainThenClose(Clock::now() + std::chrono::seconds(10));
  });
}

void Worker::DrainThenClose(Clock::time_point deadline) {
  if (deadlines_.size() == 0 || Clock::now() >= deadline) {
    // Requests in flight are answered: the Redis connections can go, and with them the
    // loop's last work.
    redis_->Close();
    return;
  }
  auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(10));
  timer->async_wait(
      [this, timer, deadline](boost::system::error_code) { DrainThenClose(deadline); });
}

void Worker::Sweep() {
  if (!acceptor_.is_open() && deadlines_.size() == 0) return;
  deadlines_.ExpireAt(Clock::now(), [this](uint32_t slot) {
    if (auto s = by_slot_[slot].lock()) s->Expire();
  });
  sweep_.expires_after(kSweepInterval);
  sweep_.async_wait([this](boost::system::error_code ec) {
    if (!ec) Sweep();
  });
}

}  // namespace pdv::api
