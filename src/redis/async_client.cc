#include "redis/async_client.h"

#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include "redis/tls.h"

namespace pdv::redis {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

// rediss://: a context verifying the server as the synchronous client does; nullptr
// for redis:// (or when it cannot be made: connecting then fails with the reason).
std::unique_ptr<asio::ssl::context> TlsContextFor(const Endpoint& endpoint, Status* error) {
  if (!endpoint.tls) return nullptr;
  auto ctx = MakeClientTlsContext(endpoint);
  if (!ctx.ok()) {
    *error = ctx.status();
    return nullptr;
  }
  return std::make_unique<asio::ssl::context>(ctx->release());
}

}  // namespace

AsyncClient::AsyncClient(asio::io_context& io, Endpoint endpoint, std::chrono::milliseconds timeout)
    : io_(io), endpoint_(std::move(endpoint)), timeout_(timeout), socket_(io), timer_(io) {
  Status error;
  tls_context_ = TlsContextFor(endpoint_, &error);
  if (!error.ok()) closed_error_ = error;
}

AsyncClient::~AsyncClient() = default;

void AsyncClient::Command(const std::vector<std::string_view>& args, Callback done) {
  std::string formatted = FormatCommand(args);
  if (formatted.empty()) {
    done(Status::Error("redis: cannot format command"), nullptr);
    return;
  }

  if (closed_ || (state_ == State::kDisconnected && Clock::now() < retry_after_)) {
    ++errors_;
    done(Status::Error("redis: unavailable (reconnecting)", kConnectionError), nullptr);
    return;
  }
  pending_.push_back({std::move(done), Clock::now() + timeout_});
  if (state_ == State::kConnected) {
    out_ += formatted;
    // Commands issued in the same turn of the loop (concurrent requests) leave in one
    // write.
    if (!flush_posted_) {
      flush_posted_ = true;
      auto self = shared_from_this();
      asio::post(io_, [this, self] {
        flush_posted_ = false;
        Flush();
      });
    }
  } else {
    queued_.push_back(std::move(formatted));
    if (state_ == State::kDisconnected) Connect();
  }
  ArmTimer();
}

void AsyncClient::Connect() {
  state_ = State::kConnecting;
  boost::system::error_code ec;
  auto address = asio::ip::make_address(endpoint_.host, ec);
  if (ec) {
    // A host name: resolve it synchronously once (start-up or reconnect only).
    asio::ip::tcp::resolver resolver(io_);
    auto results = resolver.resolve(endpoint_.host, std::to_string(endpoint_.port), ec);
    if (ec || results.empty()) {
      Fail(
          Status::Error(fmt::format("redis: cannot resolve {}", endpoint_.host), kConnectionError));
      return;
    }
    address = results.begin()->endpoint().address();
  }
  if (!closed_error_.ok()) return Fail(closed_error_);
  if (tls_context_) {
    tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket>>(io_, *tls_context_);
    if (Status s = ExpectServerName(tls_->native_handle(), endpoint_); !s.ok()) return Fail(s);
  } else {
    socket_ = asio::ip::tcp::socket(io_);
  }
  auto self = shared_from_this();
  uint64_t generation = ++generation_;
  Socket().async_connect(
      {address, static_cast<uint16_t>(endpoint_.port)},
      [this, self, generation](boost::system::error_code cec) {
        if (generation != generation_ || state_ != State::kConnecting) return;
        if (cec) {
          Fail(Status::Error(fmt::format("redis: connect: {}", cec.message()), kConnectionError));
          return;
        }
        Socket().set_option(asio::ip::tcp::no_delay(true));
        if (!tls_) return Connected();
        tls_->async_handshake(asio::ssl::stream_base::client, [this, self, generation](
                                                                  boost::system::error_code hec) {
          if (generation != generation_ || state_ != State::kConnecting) {
            return;
          }
          if (hec) {
            Fail(Status::Error(fmt::format("redis: TLS handshake: {}", hec.message()),
                               kConnectionError));
            return;
          }
          Connected();
        });
      });
}

void AsyncClient::Connected() {
  reader_.emplace();
  std::string prefix;
  // AUTH and SELECT replies are consumed by placeholders.
  auto preamble = [&](std::vector<std::string_view> args) {
    prefix += FormatCommand(args);
    pending_.push_front({[](const Status&, redisReply*) {}, Clock::now() + timeout_});
  };
  std::string db = std::to_string(endpoint_.db);
  if (auto auth = AuthCommand(endpoint_); !auth.empty()) preamble(auth);
  if (endpoint_.db != 0) preamble({"SELECT", db});
  // CLIENT TRACKING goes after the commands queued before it: wire order must be the
  // order of pending_. A new connection is a new client: nothing read before is tracked.
  auto queued = std::move(queued_);
  queued_.clear();
  if (link_) {
    tracking_ready_ = false;
    tracking_.on_reset();
    RequestTracking();
  }
  state_ = State::kConnected;
  out_ = prefix;
  for (auto& q : queued) out_ += q;
  for (auto& q : queued_) out_ += q;
  queued_.clear();
  Flush();
  Read();
}

void AsyncClient::Flush() {
  if (write_in_flight_ || out_.empty() || state_ != State::kConnected) return;
  writing_.swap(out_);
  out_.clear();
  write_in_flight_ = true;
  auto self = shared_from_this();
  uint64_t generation = generation_;
  auto done = [this, self, generation](boost::system::error_code ec, size_t) {
    if (generation != generation_) return;  // a closed connection's write
    write_in_flight_ = false;
    writing_.clear();
    if (ec) {
      Fail(Status::Error(fmt::format("redis: write: {}", ec.message()), kConnectionError));
      return;
    }
    Flush();
  };
  if (tls_) {
    asio::async_write(*tls_, asio::buffer(writing_), std::move(done));
  } else {
    asio::async_write(socket_, asio::buffer(writing_), std::move(done));
  }
}

void AsyncClient::Read() {
  auto self = shared_from_this();
  uint64_t generation = generation_;
  auto got = [this, self, generation](boost::system::error_code ec, size_t n) {
    if (generation != generation_ || state_ != State::kConnected) return;
    if (ec) {
      Fail(Status::Error(fmt::format("redis: read: {}", ec.message()), kConnectionError));
      return;
    }
    reader_->Feed(in_.data(), n);
    while (true) {
      auto reply = reader_->Next();
      if (!reply.ok()) {
        Fail(reply.status());
        return;
      }
      if (!*reply) break;
      redisReply* r = reply->get();  // freed with `reply`, whatever the callback does
      if (!pending_.empty()) {
        Pending p = std::move(pending_.front());
        pending_.pop_front();
        if (r->type == REDIS_REPLY_ERROR) {
          std::string where = fmt::format("{}:{}", endpoint_.host, endpoint_.port);
          p.done(ErrorReply({r->str, r->len}, where, endpoint_.cluster), r);
        } else {
          p.done(Status::Ok(), r);
        }
      }
    }
    Read();
  };
  if (tls_) {
    tls_->async_read_some(asio::buffer(in_), std::move(got));
  } else {
    socket_.async_read_some(asio::buffer(in_), std::move(got));
  }
}

void AsyncClient::Fail(const Status& why) {
  ++errors_;
  ++generation_;
  write_in_flight_ = false;
  writing_.clear();
  state_ = State::kDisconnected;
  retry_after_ = Clock::now() + std::chrono::milliseconds(100);
  boost::system::error_code ignored;
  Socket().close(ignored);
  out_.clear();
  queued_.clear();
  auto failed = std::move(pending_);
  pending_.clear();
  for (auto& p : failed) p.done(why, nullptr);
}

void AsyncClient::EnableTracking(TrackingHandlers handlers) {
  if (link_) return;
  tracking_ = std::move(handlers);
  link_ = std::make_shared<InvalidationLink>(io_, endpoint_, tracking_.on_key, tracking_.on_reset);
  link_->Start();
  if (state_ == State::kConnected) RequestTracking();
}

void AsyncClient::RequestTracking() {
  if (!link_ || !link_->up() || tracking_pending_) return;
  tracking_pending_ = true;
  uint64_t epoch = link_->epoch();
  std::string id = std::to_string(link_->client_id());
  Command({"CLIENT", "TRACKING", "on", "REDIRECT", id},
          [this, epoch](const Status& s, redisReply*) {
            tracking_pending_ = false;
            if (s.ok() && link_ && link_->epoch() == epoch) {
              tracking_ready_ = true;
              tracking_epoch_ = epoch;
            }
          });
}

bool AsyncClient::TrackingOn(std::string_view) const {
  return link_ && link_->up() && tracking_ready_ && tracking_epoch_ == link_->epoch();
}

bool AsyncClient::Tracked(std::string_view key) {
  if (!link_) return false;
  // The link came back with a new id: redirect to it (what was cached is gone already:
  // the link's drop was an on_reset).
  if (link_->up() && tracking_epoch_ != link_->epoch() && !tracking_pending_) {
    tracking_ready_ = false;
    tracking_.on_reset();
    RequestTracking();
  }
  if (!TrackingOn(key)) return false;
  // Once per loop turn: a request handled now was read before this drain or reported by
  // the same epoll_wait as the handlers queued before the reset below, so what Redis sent
  // before it arrived is read. Reading the link for every cached answer cost one recv per
  // answer (2.4% of serve's CPU under bench/api).
  if (!drained_this_turn_) {
    link_->Drain();
    drained_this_turn_ = true;
    // Posted handlers run after the handlers the reactor queued with this turn's events.
    asio::post(io_, [weak = weak_from_this()] {
      if (auto self = weak.lock()) self->drained_this_turn_ = false;
    });
  }
  return TrackingOn(key);
}

void AsyncClient::Close() {
  closed_ = true;
  if (link_) link_->Stop();
  timer_.cancel();
  Fail(Status::Error("redis: closed", kConnectionError));
}

void AsyncClient::ArmTimer() {
  if (pending_.empty()) return;
  timer_.expires_at(pending_.front().deadline);
  auto self = shared_from_this();
  timer_.async_wait([this, self](boost::system::error_code ec) {
    if (ec || pending_.empty()) return;
    if (Clock::now() >= pending_.front().deadline) {
      // Replies arrive in order: the oldest is late, so the connection is stuck.
      Fail(Status::Error("redis: no reply within the deadline", kConnectionError));
      return;
    }
    ArmTimer();
  });
}

// ---- InvalidationLink ----

InvalidationLink::InvalidationLink(asio::io_context& io, Endpoint endpoint,
                                   std::function<void(std::string_view)> on_key,
                                   std::function<void()> on_flush)
    : io_(io),
      endpoint_(std::move(endpoint)),
      on_key_(std::move(on_key)),
      on_flush_(std::move(on_flush)),
      socket_(io),
      retry_(io) {
  Status error;
  tls_context_ = TlsContextFor(endpoint_, &error);
}

InvalidationLink::~InvalidationLink() = default;

void InvalidationLink::Start() { Connect(); }

void InvalidationLink::Stop() {
  stopped_ = true;
  ++generation_;
  retry_.cancel();
  boost::system::error_code ignored;
  Socket().close(ignored);
}

void InvalidationLink::Connect() {
  if (stopped_) return;
  boost::system::error_code ec;
  auto address = asio::ip::make_address(endpoint_.host, ec);
  if (ec) {
    asio::ip::tcp::resolver resolver(io_);
    auto results = resolver.resolve(endpoint_.host, std::to_string(endpoint_.port), ec);
    if (ec || results.empty()) return Fail();
    address = results.begin()->endpoint().address();
  }
  if (endpoint_.tls && !tls_context_) return Fail();
  if (tls_context_) {
    tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket>>(io_, *tls_context_);
    if (!ExpectServerName(tls_->native_handle(), endpoint_).ok()) return Fail();
  } else {
    socket_ = asio::ip::tcp::socket(io_);
  }
  uint64_t generation = ++generation_;
  auto self = shared_from_this();
  Socket().async_connect({address, static_cast<uint16_t>(endpoint_.port)},
                         [this, self, generation](boost::system::error_code cec) {
                           if (generation != generation_) return;
                           if (cec) return Fail();
                           if (!tls_) return Hello();
                           tls_->async_handshake(
                               asio::ssl::stream_base::client,
                               [this, self, generation](boost::system::error_code hec) {
                                 if (generation != generation_) return;
                                 if (hec) return Fail();
                                 Hello();
                               });
                         });
}

// AUTH, CLIENT ID and SUBSCRIBE in one write; then the socket turns non-blocking, so
// Drain can read what has arrived without waiting.
void InvalidationLink::Hello() {
  reader_.emplace();
  replies_ = 0;
  std::string hello;
  if (auto auth = AuthCommand(endpoint_); !auth.empty()) {
    hello += FormatCommand(auth);
    replies_ = -1;
  }
  hello += FormatCommand({"CLIENT", "ID"});
  hello += FormatCommand({"SUBSCRIBE", "__redis__:invalidate"});
  boost::system::error_code wec;
  if (tls_) {
    asio::write(*tls_, asio::buffer(hello), wec);
  } else {
    asio::write(socket_, asio::buffer(hello), wec);
  }
  if (wec) return Fail();
  Socket().non_blocking(true);
  Wait();
}

void InvalidationLink::Wait() {
  uint64_t generation = generation_;
  auto self = shared_from_this();
  Socket().async_wait(asio::ip::tcp::socket::wait_read,
                      [this, self, generation](boost::system::error_code ec) {
                        if (generation != generation_) return;
                        if (ec) return Fail();
                        Drain();
                        if (generation == generation_) Wait();
                      });
}

void InvalidationLink::Drain() {
  if (!reader_ || !Socket().is_open()) return;
  char buf[8192];
  while (true) {
    boost::system::error_code ec;
    size_t n =
        tls_ ? tls_->read_some(asio::buffer(buf), ec) : socket_.read_some(asio::buffer(buf), ec);
    if (ec == asio::error::would_block) break;
    if (ec || n == 0) return Fail();
    reader_->Feed(buf, n);
    while (true) {
      auto reply = reader_->Next();
      if (!reply.ok()) return Fail();
      if (!*reply) break;
      redisReply* r = reply->get();
      if (replies_ < 0) {
        ++replies_;  // AUTH
      } else if (replies_ == 0) {
        client_id_ = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
        ++replies_;
      } else if (replies_ == 1) {
        ++replies_;  // subscribed
        up_ = true;
        ++epoch_;
      } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
        redisReply* payload = r->element[2];
        if (payload->type == REDIS_REPLY_ARRAY) {
          for (size_t i = 0; i < payload->elements; ++i) {
            on_key_(std::string_view(payload->element[i]->str, payload->element[i]->len));
          }
        } else {
          on_flush_();  // FLUSHALL/FLUSHDB: a null payload
        }
      }
    }
  }
}

void InvalidationLink::Fail() {
  bool was_up = up_;
  up_ = false;
  ++generation_;
  boost::system::error_code ignored;
  Socket().close(ignored);
  if (was_up) on_flush_();
  if (stopped_) return;
  retry_.expires_after(std::chrono::milliseconds(200));
  auto self = shared_from_this();
  retry_.async_wait([this, self](boost::system::error_code ec) {
    if (!ec) Connect();
  });
}

}  // namespace pdv::redis
