#pragma once

// One way for a stage to work under its lease (in the spirit of userver's
// DistLockComponentBase): the stage supplies the work; the runner waits for the lease
// (a standby meanwhile), runs the work while the lease is held, retries it with backoff
// when it fails, cancels it when the lease is lost, asks for the lease again, and
// releases it on a clean stop so that a standby takes over at once.
//
//   acquire ─► work ─(fails, retryable)─► backoff ─► work ...
//     ▲          │ (lease lost: the work's stop token fires) ─► log <stage>_lease_lost
//     └──────────┘
//
// cdc, transform watch, cache watch and monitor all run this way.

#include <chrono>
#include <functional>
#include <stop_token>
#include <string>

#include "common/log.h"
#include "common/status.h"
#include "pg/lease.h"

namespace pdv::pg {

// What the work gets while its instance holds the lease. Lives as long as one call of
// the work; not thread-safe (the work's own thread uses it).
class LeaseHold {
 public:
  LeaseHold(Lease& lease, std::stop_token stop) : lease_(lease), stop_(std::move(stop)) {}
  Lease& lease() { return lease_; }
  int64_t token() const { return lease_.token(); }
  std::string FenceSql() const { return lease_.FenceSql(); }
  // Stopped when the stage stops or the lease is lost: wait on it, and return when it
  // fires (whatever is then returned, the runner knows which of the two it was).
  std::stop_token stop_token() const { return stop_; }
  // The work made progress: the next failure starts the backoff (and the give-up
  // clock) afresh.
  void Healthy() { healthy_ = true; }
  bool healthy() const { return healthy_; }

 private:
  Lease& lease_;
  std::stop_token stop_;
  bool healthy_ = false;
};

// The work: runs until its stop token fires (then Ok) or it fails. Ok without a stop
// means done for good (a one-shot): the runner releases the lease and returns Ok.
using LeaseWork = std::function<Status(LeaseHold&)>;

struct LeaseRunnerOptions {
  LeaseOptions lease;
  // Whether a failure (of the work, or of asking for the lease) is worth another try;
  // unset: every failure is. One that is not ends the run with it.
  std::function<bool(const Status&)> retryable = {};
  // Give up (return the failure) after failing this long with no progress; 0: never.
  std::chrono::milliseconds give_up{0};
  // The retry's log event ("<stage>_retry" when empty) and a hook called before each
  // retry (a stage's reconnect counter).
  std::string retry_event = {};
  std::function<void()> on_retry = {};
};

// Runs `work` under the lease until `stop` (Ok), a failure that is not retried or that
// outlasted give_up (that failure), or the work ending by itself (Ok). Logs
// <stage>_standby/_active (pg::Lease), <stage>_lease_lost and the retry event with the
// attempt, the delay and the error.
Status RunUnderLease(const LeaseRunnerOptions& options, Logger& log, std::stop_token stop,
                     const LeaseWork& work);

}  // namespace pdv::pg
