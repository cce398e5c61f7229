#pragma once

#include <cstdint>
#include <functional>
#include <stop_token>
#include <string>

#include "common/log.h"
#include "common/status.h"
#include "generate/reference_data.h"

namespace pdv::generate {

struct WorkloadOptions {
  std::string oltp_url;
  std::string cpf_key;
  uint64_t seed = 1;
  double rate = 10;       // operations per second
  double duration_s = 0;  // 0: until stopped
  double delete_share = 0.03;
  double retry_timeout_s = 60;  // give up after this long without a working connection
  // Receives the CPFs (11 digits) of customers whose sign-up committed.
  std::function<void(const std::string&)> on_signup;
};

struct WorkloadStats {
  uint64_t transactions = 0;
  uint64_t inserts = 0, updates = 0, deletes = 0;
  uint64_t reconnects = 0;
  uint64_t failed_transactions = 0;  // rejected by the server and skipped
};

// The continuous OLTP workload: sign-ups, updates (status ATIVO<->INATIVO, opt-in,
// ticket, a move to another city) and a small share of deletes, paced at `rate`
// operations per second, in transactions of 1 to 20 operations, each sent as one
// round trip. A lost connection is reported and retried with exponential backoff (the
// transaction is retried; if it had in fact committed, the retry's unique violation
// is reported and skipped). Stops between transactions when `stop` is requested or the
// duration is over. Fails when the connection stays lost for retry_timeout_s or the
// server keeps rejecting transactions.
pdv::Result<WorkloadStats> RunWorkload(const ReferenceData& data, const WorkloadOptions& options,
                                       Logger& log, std::stop_token stop);

}  // namespace pdv::generate
