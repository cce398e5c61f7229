#include "pg/reconnect.h"

#include <fmt/format.h>

#include <condition_variable>
#include <mutex>

#include "common/backoff.h"

namespace pdv::pg {

bool SleepFor(std::chrono::milliseconds d, std::stop_token stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  cv.wait_for(lock, stop, d, [] { return false; });
  return !stop.stop_requested();
}

pdv::Result<Connection> ConnectWithRetry(const std::string& url, Logger& log,
                                         std::chrono::milliseconds give_up_after,
                                         std::stop_token stop) {
  auto deadline = std::chrono::steady_clock::now() + give_up_after;
  Backoff backoff;
  for (int attempt = 1;; ++attempt) {
    auto conn = Connection::Connect(url);
    if (conn.ok()) {
      if (attempt > 1) log.Info("db_reconnected", {{"url", url}, {"attempts", attempt}});
      return conn;
    }
    // A refused or dropped connection may come back; bad credentials will not.
    bool retryable = conn.message().find("authentication") == std::string::npos &&
                     conn.message().find("does not exist") == std::string::npos;
    if (!retryable || std::chrono::steady_clock::now() + backoff.delay() > deadline) {
      return Status::Error(
          fmt::format("{} (after {} attempt{})", conn.message(), attempt, attempt == 1 ? "" : "s"),
          conn.status().code());
    }
    log.Warn("db_reconnect", {{"url", url},
                              {"attempt", attempt},
                              {"retry_in_ms", static_cast<int64_t>(backoff.delay().count())},
                              {"error", conn.message()}});
    if (!SleepFor(backoff.delay(), stop))
      return Status::Error("stopped while reconnecting", kConnectionLost);
    backoff.Grow();
  }
}

}  // namespace pdv::pg
