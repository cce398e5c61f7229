#pragma once

// The platform's self-observation: the pipeline's status (each stage's position, lag,
// rate and health, read from the servers themselves) and a freshness probe (a marker
// customer changed in the OLTP table every second, timed until the API answers with the
// change). `pdv monitor` publishes both in Redis (pdv:status) for the API's /status page
// and /metrics; `pdv status` prints them.

#include <memory>
#include <nlohmann/json.hpp>
#include <stop_token>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/status.h"

namespace pdv::monitor {

// Redis key holding the latest status JSON (expires if the monitor stops).
inline constexpr char kStatusKey[] = "pdv:status";

struct Sources {
  std::string oltp_url;
  std::string warehouse_url;
  std::string redis_url;
  std::string api_listen;   // host:port of pdv serve
  std::string api_ca_cert;  // set: the API speaks HTTPS, its certificate signed by this CA
  std::string slot = "pdv_slot";
};

// Samples every stage twice, `window_ms` apart (rates are the deltas), and returns
// {"generated_at", "stages": [{name, health, position, rows, rate, lag_seconds,
// lag_rows, detail}], "freshness": {...} (from Redis when a monitor runs)}. A stage whose
// server is unreachable is reported with health "down" and the error, not as a failure.
nlohmann::json CollectStatus(const Sources& sources, int window_ms);

// The same, one reading per call, rates against the previous call (the monitor's loop).
class StatusSampler {
 public:
  explicit StatusSampler(Sources sources);
  ~StatusSampler();
  nlohmann::json Next();

 private:
  struct State;
  Sources sources_;
  std::unique_ptr<State> state_;
};

struct MonitorOptions {
  Sources sources;
  std::string api_key;  // the probe calls the API like a POS
  // The marker customer's cpf_hash (ProbeCpfHash): the monitor holds no cpf_key.
  std::string probe_cpf_hash;
  int interval_ms = 1000;
};

// The marker customer's cpf_hash under `cpf_key`: computed by whoever holds the key.
std::string ProbeCpfHash(const std::string& cpf_key);

// Probes freshness and publishes the status every interval until `stop`.
Status Run(const MonitorOptions& options, Logger& log, std::stop_token stop);

struct Comparison {
  std::string name;  // "OLTP → RAW"
  int64_t left_count = 0, right_count = 0;
  int64_t missing = 0, extra = 0, different = 0;
  std::vector<std::string> examples;  // the first differences of each kind
  std::vector<std::string> keys;      // every difference: "missing <id>", "extra <id>"...
};

struct ReconcileReport {
  bool caught_up = false;
  std::string positions;
  std::vector<Comparison> comparisons;
  bool Clean() const {
    for (const auto& c : comparisons) {
      if (c.missing || c.extra || c.different) return false;
    }
    return true;
  }
};

struct ReconcileOptions {
  Sources sources;
  int wait_s = 60;        // for the pipeline to catch up with the OLTP position at start
  int show = 5;           // differences listed per comparison and kind
  int grace_minutes = 5;  // the eligibility rule's grace period (carencia_minutos)
  int rounds = 3;         // a difference must show in every round (see Reconcile)
  // Data minimisation (LGPD): a difference is named by cliente_id and column; values are
  // printed only when asked.
  bool show_values = false;
  // The erasure register's key (common/erasure.h): customers erased but kept at the
  // source are not expected downstream. Empty: the register is not consulted.
  std::string erasure_key;
};

// Compares OLTP with RAW's latest state, RAW with the dimension (the eligibility rule
// recomputed independently) and the dimension with Redis, once the pipeline has caught up
// (or `wait_s` passed: then caught_up is false). Errors: a server unreachable.
Result<ReconcileReport> Reconcile(const ReconcileOptions& options);
std::string FormatReconcile(const ReconcileReport& report);

// `status` (as the monitor publishes it, or CollectStatus returns it) as anyone may see
// it (/status.json needs no key): each stage's detail is its public_detail, a state
// ("unreachable") where the operator's detail is an error naming a server; no instance
// names; freshness.last_error says only that the probe fails. Pure.
nlohmann::json PublicStatus(const nlohmann::json& status);

// One line per stage (pdv status).
std::string FormatStatus(const nlohmann::json& status);

}  // namespace pdv::monitor
