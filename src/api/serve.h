#pragma once

// Public interface of the serve stage: the HTTP API for the POS, reading Redis only.

#include <chrono>
#include <stop_token>
#include <string>

#include "common/log.h"
#include "common/status.h"

namespace pdv::api {

struct ServeOptions {
  std::string listen = "127.0.0.1:8080";
  std::string redis_url = "redis://127.0.0.1:6379/0";
  std::string cpf_key;
  int threads = 0;                  // event loops; 0: one per core
  size_t max_connections = 10'000;  // more are closed at once
  double rate_per_key = 5'000;      // requests/s per API key (each replica)
  std::chrono::milliseconds redis_timeout{40};
  // Keep customers in process, coherent through Redis client-side caching (tracking
  // with redirection); flushed whenever the invalidation link drops.
  bool near_cache = true;
  std::chrono::seconds read_timeout{10};  // a request must arrive whole within this
  std::chrono::seconds idle_timeout{30};  // keep-alive connections idle longer are closed
};

// Serves until `stop`, then stops accepting, finishes requests in flight and returns.
// Fails at start when the address cannot be bound or the configuration is unusable.
Status Serve(const ServeOptions& options, Logger& log, std::stop_token stop);

}  // namespace pdv::api
