#pragma once

// Public interface of the serve stage: the HTTP API for the POS, reading Redis only.

#include <chrono>
#include <stop_token>
#include <string>

#include "api/request.h"
#include "common/log.h"
#include "common/status.h"

namespace pdv::api {

struct ServeOptions {
  std::string listen = "127.0.0.1:8080";
  std::string redis_url = "redis://127.0.0.1:6379/0";
  std::string cpf_key;
  // HTTPS: a PEM certificate chain and its private key (both, or neither: plain HTTP).
  std::string tls_cert;
  std::string tls_key;
  int threads = 0;                  // event loops; 0: one per core
  size_t max_connections = 10'000;  // more are closed at once
  // Open connections per client address (every loop of this replica); more are closed at
  // once; 0: no cap. A store's NAT of hundreds of terminals holds a few hundred.
  size_t max_connections_per_ip = 1'000;
  // Requests/s per API key across every loop and replica (counted in Redis); 0: none.
  double rate_per_key = 5'000;
  uint64_t daily_quota_per_key = 0;  // requests per key per UTC day; 0: none
  // Requests/s per client address, per replica, checked before the key; 0: none. On by
  // default at a rate no store reaches (hundreds of terminals at a lookup a second).
  double rate_per_ip = 1'000;
  // Enumeration: a key whose lookups are mostly 404s (over `enumeration_ratio` of at
  // least `enumeration_min_lookups` in a window) is logged and counted, and with
  // `enumeration_suspend` refused (403) on every replica for `enumeration_suspend_for`.
  double enumeration_ratio = 0.5;
  uint64_t enumeration_min_lookups = 500;
  std::chrono::seconds enumeration_window{60};
  bool enumeration_suspend = false;
  std::chrono::seconds enumeration_suspend_for{3600};
  std::chrono::milliseconds redis_timeout{40};
  // Keep customers in process, coherent through Redis client-side caching (tracking
  // with redirection); flushed whenever the invalidation link drops.
  bool near_cache = true;
  // The optional fields answers carry (api.fields; data minimisation).
  AnswerFields fields;
  // A request, from its first byte to the end of its body, must arrive within
  // read_timeout, and an answer must be taken within it; a connection waiting for a
  // request's first byte longer than idle_timeout is closed. Checked by a sweep every
  // 250 ms, not by a timer per operation.
  std::chrono::seconds read_timeout{10};
  std::chrono::seconds idle_timeout{30};
};

// Serves until `stop`, then stops accepting, finishes requests in flight and returns.
// Fails at start when the address cannot be bound or the configuration is unusable.
Status Serve(const ServeOptions& options, Logger& log, std::stop_token stop);

}  // namespace pdv::api
