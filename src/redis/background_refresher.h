#pragma once

// clang-format off
#include <utility>  // before any Asio header under C++20 (PLATFORM-NOTES.md)
// clang-format on

#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <thread>
#include <type_traits>

namespace pdv::redis {

// A blocking lookup (CLUSTER SLOTS, asking the Sentinels) run for a client of one event
// loop on a thread of its own, its result handed back on the loop: at most one lookup at
// a time, at most one started per `min_interval`. The thread is joined by Close() and by
// the destructor: no lookup outlives its client. Lives on the loop's thread (Request,
// Close and the destructor are called there); not thread-safe otherwise.
class BackgroundRefresher {
 public:
  BackgroundRefresher(boost::asio::io_context& io, std::chrono::milliseconds min_interval);
  BackgroundRefresher(const BackgroundRefresher&) = delete;
  BackgroundRefresher& operator=(const BackgroundRefresher&) = delete;
  // Close().
  ~BackgroundRefresher();

  // Runs `lookup()` on the refresher's thread, then `apply(result)` on the loop (not
  // after Close()). Nothing (false) while a lookup runs, within `min_interval` of the
  // last start, or once closed. `lookup` must not touch what lives on the loop: give it
  // copies.
  template <typename Lookup, typename Apply>
  bool Request(Lookup lookup, Apply apply) {
    return Start([lookup = std::move(lookup), apply = std::move(apply)]() mutable {
      return std::function<void()>(
          [apply = std::move(apply), result = lookup()]() mutable { apply(std::move(result)); });
    });
  }

  // When the last lookup started (the clock's epoch before the first).
  std::chrono::steady_clock::time_point started_at() const { return started_at_; }

  // No lookups from now on; waits for a running one to end (its result is dropped).
  void Close();

 private:
  // Loop-thread state the lookup's completion, posted to the loop, also reads; shared so
  // that a completion running after the refresher is gone finds it.
  struct Flags {
    std::atomic<bool> busy{false}, closed{false};
  };
  // `work` runs on the thread and returns what the loop runs then.
  bool Start(std::function<std::function<void()>()> work);

  boost::asio::io_context& io_;
  std::chrono::milliseconds min_interval_;
  std::shared_ptr<Flags> flags_ = std::make_shared<Flags>();
  std::chrono::steady_clock::time_point started_at_{};
  std::thread thread_;
};

}  // namespace pdv::redis
