#include "api/shared_state.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "api/status_page.h"

namespace pdv::api {
namespace {

// The series of `map` under `key`, made by `make` the first time.
template <class T, class Make>
T* Registered(std::mutex& mu, std::map<std::string, T*>& map, const std::string& key, Make&& make) {
  std::lock_guard lock(mu);
  auto& series = map[key];
  if (!series) series = make();
  return series;
}

}  // namespace

SharedState::SharedState(const ServeOptions& o, Logger& l, int threads)
    : options(o),
      log(l),
      max_connections(o.max_connections),
      loops(threads),
      address_connections(o.max_connections_per_ip),
      status_page_csp(StatusPageContentSecurityPolicy()) {
  enumeration_alarms = registry.AddCounter(
      "pdv_api_enumeration_alarms_total",
      "keys whose share of 404s passed the enumeration threshold (api.enumeration_ratio)");
  tls_failures = registry.AddCounter("pdv_api_tls_handshake_failures_total",
                                     "connections whose TLS handshake failed");
  address_limited = registry.AddCounter("pdv_api_address_limited_total",
                                        "requests refused by the per-address limit");
  address_connections_refused = registry.AddCounter(
      "pdv_api_address_connections_refused_total",
      "connections closed at once: their address had api.max_connections_per_ip open");
  redis_errors = registry.AddCounter("pdv_api_redis_errors_total", "Redis commands that failed");
  open_connections = registry.AddGauge("pdv_api_connections", "open client connections");
  near_hits = registry.AddCounter("pdv_api_near_cache_hits_total", "lookups answered in process");
  near_misses =
      registry.AddCounter("pdv_api_near_cache_misses_total", "lookups that went to Redis");
  freshness_p50 = registry.AddGauge("pdv_freshness_p50_seconds",
                                    "OLTP commit to API answer, median of the monitor's probes");
  freshness_p99 = registry.AddGauge("pdv_freshness_p99_seconds",
                                    "OLTP commit to API answer, p99 of the monitor's probes");
  freshness_probes = registry.AddGauge("pdv_freshness_probes", "probes the monitor completed");
  freshness_missed = registry.AddGauge("pdv_freshness_missed", "probes that got no answer");
}

void SharedState::SetFreshness(std::string_view status_json) {
  auto j = nlohmann::json::parse(status_json, nullptr, false);
  if (!j.is_object() || !j["freshness"].is_object()) return;
  const auto& f = j["freshness"];
  freshness_p50->Set(f.value("p50_ms", 0.0) / 1000);
  freshness_p99->Set(f.value("p99_ms", 0.0) / 1000);
  freshness_probes->Set(static_cast<double>(f.value("samples", int64_t{0})));
  freshness_missed->Set(static_cast<double>(f.value("missed", int64_t{0})));
}

metrics::Gauge* SharedState::Counter(const char* route, unsigned status) {
  std::string key =
      fmt::format("pdv_api_requests_total{{route=\"{}\",status=\"{}\"}}", route, status);
  return Registered(metrics_mu_, counters_, key,
                    [&] { return registry.AddCounter(key, "requests by route and status"); });
}

metrics::Histogram* SharedState::Latency(const char* route, unsigned status) {
  std::string key =
      fmt::format("pdv_api_request_seconds{{route=\"{}\",status=\"{}\"}}", route, status);
  return Registered(metrics_mu_, latencies_, key, [&] {
    return registry.AddHistogram(
        key, "request latency by route",
        {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1});
  });
}

}  // namespace pdv::api
