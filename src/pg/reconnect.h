#pragma once

#include <chrono>
#include <stop_token>
#include <string>

#include "common/log.h"
#include "pg/connection.h"

namespace pdv::pg {

// Connects, retrying with exponential backoff (100 ms doubling to 5 s) while the
// failure is a connection failure, logging each attempt (event=db_reconnect, with the
// URL's password masked). Gives up after `give_up_after` or when `stop` is requested;
// other errors (bad password, unknown database) fail at once.
pdv::Result<Connection> ConnectWithRetry(const std::string& url, Logger& log,
                                         std::chrono::milliseconds give_up_after,
                                         std::stop_token stop);

// Sleeps up to `d`; returns false if `stop` was requested first.
bool SleepFor(std::chrono::milliseconds d, std::stop_token stop);

}  // namespace pdv::pg
