#include "pg/notifications.h"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>

namespace pdv::pg {

Status WaitForNotifications(Connection& listener, std::stop_token stop,
                            std::chrono::milliseconds timeout, bool* notified) {
  *notified = false;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!*notified && !stop.stop_requested()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) break;
    // A short poll so that a stop request is seen promptly.
    pollfd pfd{.fd = PQsocket(listener.raw()), .events = POLLIN, .revents = 0};
    ::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(200, left.count())));
    if (PQconsumeInput(listener.raw()) == 0) {
      return Status::Error("the LISTEN connection was lost", kConnectionLost);
    }
    while (PGnotify* n = PQnotifies(listener.raw())) {
      *notified = true;
      PQfreemem(n);
    }
  }
  return Status::Ok();
}

Status WaitForNotifications(Connection& listener, std::stop_token stop) {
  bool notified = false;
  while (!notified && !stop.stop_requested()) {
    if (Status s = WaitForNotifications(listener, stop, std::chrono::hours(1), &notified);
        !s.ok()) {
      return s;
    }
  }
  return Status::Ok();
}

}  // namespace pdv::pg
