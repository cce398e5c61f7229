#pragma once

#include <stop_token>

#include "common/status.h"
#include "pg/connection.h"

namespace pdv::pg {

// Waits on a connection that LISTENs until at least one notification arrives, then drains
// every one already delivered (a burst counts once). Returns ok after notifications or when
// `stop` is requested; an error ("08006") when the connection is lost.
Status WaitForNotifications(Connection& listener, std::stop_token stop);

}  // namespace pdv::pg
