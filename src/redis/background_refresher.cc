#include "redis/background_refresher.h"

namespace pdv::redis {

BackgroundRefresher::BackgroundRefresher(boost::asio::io_context& io,
                                         std::chrono::milliseconds min_interval)
    : io_(io), min_interval_(min_interval) {}

BackgroundRefresher::~BackgroundRefresher() { Close(); }

bool BackgroundRefresher::Start(std::function<std::function<void()>()> work) {
  if (flags_->busy || flags_->closed) return false;
  auto now = std::chrono::steady_clock::now();
  if (now - started_at_ < min_interval_) return false;
  flags_->busy = true;
  started_at_ = now;
  // The last lookup's thread has posted its result already (busy was cleared there): at
  // most its exit is left to wait for.
  if (thread_.joinable()) thread_.join();
  thread_ = std::thread([flags = flags_, &io = io_, work = std::move(work)] {
    std::function<void()> then = work();
    boost::asio::post(io, [flags, then = std::move(then)] {
      flags->busy = false;
      if (!flags->closed) then();
    });
  });
  return true;
}

void BackgroundRefresher::Close() {
  flags_->closed = true;
  if (thread_.joinable()) thread_.join();
}

}  // namespace pdv::redis
