#pragma once

// What an accept loop does when accept fails. Shared by the API and the metrics
// exporter, which both must keep accepting through resource exhaustion.

#include <chrono>
#include <cstdint>

namespace pdv {

// A failed accept other than shutdown (resource exhaustion: EMFILE, ENFILE, ENOBUFS,
// ENOMEM; or anything else) is waited out: the loop tries again after kRetryDelay, the
// pending connections waiting in the listen backlog. It is logged at most once a second,
// with the count of failures not logged. Not thread-safe: one per accept loop.
class AcceptErrors {
 public:
  static constexpr std::chrono::milliseconds kRetryDelay{50};

  // Counts one failure; true when it should be logged now, with `*since_last` the
  // failures since the last logged one (this one included).
  bool Count(std::chrono::steady_clock::time_point now, uint64_t* since_last) {
    ++unlogged_;
    if (logged_once_ && now - last_log_ < std::chrono::seconds(1)) return false;
    logged_once_ = true;
    last_log_ = now;
    *since_last = unlogged_;
    unlogged_ = 0;
    return true;
  }

 private:
  bool logged_once_ = false;
  std::chrono::steady_clock::time_point last_log_{};
  uint64_t unlogged_ = 0;
};

}  // namespace pdv
