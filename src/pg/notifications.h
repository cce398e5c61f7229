#pragma once

#include <chrono>
#include <stop_token>

#include "common/status.h"
#include "pg/connection.h"

namespace pdv::pg {

// Waits on a connection that LISTENs until at least one notification arrives, then drains
// every one already delivered (a burst counts once). Returns ok after notifications or when
// `stop` is requested; an error (kConnectionLost) when the connection is lost.
Status WaitForNotifications(Connection& listener, std::stop_token stop);
// The same, giving up after `timeout` without one: `*notified` says which it was.
Status WaitForNotifications(Connection& listener, std::stop_token stop,
                            std::chrono::milliseconds timeout, bool* notified);

}  // namespace pdv::pg
