#pragma once

// What every event loop of `pdv serve` shares (SharedState): the options and logger, the
// metrics registry and its series, the count of open connections against their cap, the
// per-address connection counts and the TLS context. Thread-safe as stated per member.

// clang-format off
#include <utility>  // before any Asio header under C++20 (PLATFORM-NOTES.md)
// clang-format on

#include <atomic>
#include <boost/asio/ssl/context.hpp>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "api/key_limits.h"
#include "api/serve.h"
#include "common/log.h"
#include "metrics/registry.h"

namespace pdv::api {

// Built once by Serve before the loops start and outlives them. The metric pointers are
// set by the constructor and never change (the series are thread-safe); Counter and
// Latency may be called from any loop.
struct SharedState {
  SharedState(const ServeOptions& options, Logger& log, int loops);

  // The freshness the monitor published (pdv:status JSON) into our own gauges; ignores
  // what does not parse.
  void SetFreshness(std::string_view status_json);
  // The request counter and latency histogram of (route, status), registered on first use.
  metrics::Gauge* Counter(const char* route, unsigned status);
  metrics::Histogram* Latency(const char* route, unsigned status);

  const ServeOptions& options;
  Logger& log;
  metrics::Registry registry;
  std::atomic<size_t> connections{0};
  size_t max_connections = 0;  // options' value kept within the open-file limit
  std::atomic<bool> stopping{false};
  int loops = 1;
  AddressConnections address_connections;        // api.max_connections_per_ip, every loop's
  std::optional<boost::asio::ssl::context> tls;  // set: every connection is HTTPS
  const std::string status_page_csp;

  metrics::Gauge* redis_errors;
  metrics::Gauge* open_connections;
  metrics::Gauge* near_hits;
  metrics::Gauge* near_misses;
  metrics::Gauge* enumeration_alarms;
  metrics::Gauge* tls_failures;
  metrics::Gauge* address_limited;
  metrics::Gauge* address_connections_refused;
  metrics::Gauge* freshness_p50;
  metrics::Gauge* freshness_p99;
  metrics::Gauge* freshness_probes;
  metrics::Gauge* freshness_missed;

 private:
  std::mutex metrics_mu_;  // guards the two maps
  std::map<std::string, metrics::Gauge*> counters_;
  std::map<std::string, metrics::Histogram*> latencies_;
};

}  // namespace pdv::api
