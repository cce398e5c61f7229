#include "pg/notifications.h"

#include <libpq-fe.h>
#include <poll.h>

namespace pdv::pg {

Status WaitForNotifications(Connection& listener, std::stop_token stop) {
  bool notified = false;
  while (!notified && !stop.stop_requested()) {
    // A short poll so that a stop request is seen promptly.
    pollfd pfd{.fd = PQsocket(listener.raw()), .events = POLLIN, .revents = 0};
    ::poll(&pfd, 1, 200);
    if (PQconsumeInput(listener.raw()) == 0) {
      return Status::Error("the LISTEN connection was lost", "08006");
    }
    while (PGnotify* n = PQnotifies(listener.raw())) {
      notified = true;
      PQfreemem(n);
    }
  }
  return Status::Ok();
}

}  // namespace pdv::pg
