#include "redis/async_sentinel.h"

#include <fmt/format.h>

#include "redis/client.h"

namespace pdv::redis {

namespace asio = boost::asio;

AsyncSentinel::AsyncSentinel(asio::io_context& io, Endpoint endpoint,
                             std::chrono::milliseconds timeout)
    : io_(io),
      endpoint_(std::move(endpoint)),
      timeout_(timeout),
      refresher_(io, std::chrono::milliseconds(200)) {}

AsyncSentinel::~AsyncSentinel() = default;

void AsyncSentinel::Start() { Resolve(); }

void AsyncSentinel::Resolve() {
  // Asking the Sentinels blocks (connects, waits): off the loop, the answer handed back.
  refresher_.Request(
      [endpoint = endpoint_] { return SentinelPrimary(endpoint, std::chrono::milliseconds(1000)); },
      [weak = weak_from_this()](Result<std::pair<std::string, int>> primary) {
        auto self = weak.lock();
        if (!self || !primary.ok()) return;
        std::string address = fmt::format("{}:{}", primary->first, primary->second);
        if (address == self->primary_address_ && self->primary_) return;
        if (self->primary_) self->primary_->Close();
        Endpoint e = self->endpoint_;
        e.host = primary->first;
        e.port = primary->second;
        e.sentinel_master.clear();
        self->primary_ = std::make_shared<AsyncClient>(self->io_, e, self->timeout_);
        self->primary_address_ = address;
        if (self->tracking_) {
          self->tracking_->on_reset();
          self->primary_->EnableTracking(*self->tracking_);
        }
      });
}

void AsyncSentinel::Command(const std::vector<std::string_view>& args, Callback done) {
  if (!primary_) {
    Resolve();
    return done(
        Status::Error("redis: no primary known yet (asking the Sentinels)", kConnectionError),
        nullptr);
  }
  auto self = shared_from_this();
  primary_->Command(args, [this, self, done = std::move(done)](const Status& s, redisReply* r) {
    // A lost primary, or one demoted (READONLY): ask the Sentinels who it is now.
    if (IsConnectionError(s) || (!s.ok() && s.message().find("READONLY") != std::string::npos)) {
      Resolve();
    }
    done(s, r);
  });
}

void AsyncSentinel::EnableTracking(TrackingHandlers handlers) {
  tracking_ = std::move(handlers);
  if (primary_) primary_->EnableTracking(*tracking_);
}

void AsyncSentinel::Close() {
  refresher_.Close();
  if (primary_) primary_->Close();
}

}  // namespace pdv::redis
