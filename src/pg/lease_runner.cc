#include "pg/lease_runner.h"

#include <fmt/format.h>

#include "common/backoff.h"
#include "pg/reconnect.h"

namespace pdv::pg {

using Clock = std::chrono::steady_clock;

Status RunUnderLease(const LeaseRunnerOptions& options, Logger& log, std::stop_token stop,
                     const LeaseWork& work) {
  const std::string& stage = options.lease.stage;
  const std::string retry_event =
      options.retry_event.empty() ? stage + "_retry" : options.retry_event;
  Backoff backoff;
  int attempt = 0;
  Clock::time_point failing_since{};
  // Ok to go on (after the backoff), or the status to end the run with.
  auto retry = [&](const Status& failed) -> std::optional<Status> {
    ++attempt;
    if (options.retryable && !options.retryable(failed)) return failed;
    auto now = Clock::now();
    if (failing_since == Clock::time_point{}) failing_since = now;
    if (options.give_up.count() > 0 && now - failing_since > options.give_up) {
      return Status::Error(fmt::format("{} (gave up after {} attempts)", failed.message(), attempt),
                           failed.code());
    }
    if (options.on_retry) options.on_retry();
    log.Warn(retry_event, {{"attempt", attempt},
                           {"retry_in_ms", static_cast<int64_t>(backoff.delay().count())},
                           {"error", failed.message()}});
    if (!SleepFor(backoff.delay(), stop)) return Status::Ok();
    backoff.Grow();
    return std::nullopt;
  };

  while (!stop.stop_requested()) {
    auto acquired = Lease::Acquire(options.lease, log, stop);
    if (!acquired.ok()) {
      if (auto done = retry(acquired.status())) return *done;
      continue;
    }
    if (!*acquired) return Status::Ok();  // stopped while a standby
    Lease& lease = **acquired;
    while (true) {
      // The work's stop: the stage's, or the lease lost (the renewing thread sees it).
      std::stop_source work_stop;
      std::stop_callback on_stop(stop, [&] { work_stop.request_stop(); });
      std::stop_callback on_lost(lease.lost_token(), [&] { work_stop.request_stop(); });
      LeaseHold hold(lease, work_stop.get_token());
      Status s = work(hold);
      if (hold.healthy()) {
        backoff.Reset();
        failing_since = Clock::time_point{};
      }
      if (stop.stop_requested()) {
        lease.Release();  // a standby takes over at once
        return Status::Ok();
      }
      // Whatever failed, a lost lease is the reason: a former holder back from a cut link
      // may fail before its fence is checked (e.g. on a unique key the new holder wrote).
      if (Status kept = lease.Keep(); !kept.ok() && !IsLeaseLost(s)) {
        s = Status::Error(s.ok() ? kept.message() : s.message(), kLeaseLost);
      }
      if (IsLeaseLost(s)) {
        // Cut off or outlived: what this instance had not committed is fenced out.
        log.Warn(stage + "_lease_lost", {{"lease_token", lease.token()}, {"error", s.message()}});
        break;  // asks for the lease again
      }
      if (s.ok()) {
        lease.Release();
        return s;
      }
      if (auto done = retry(s)) {
        lease.Release();
        return *done;
      }
    }
  }
  return Status::Ok();
}

}  // namespace pdv::pg
