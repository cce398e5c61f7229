#pragma once

// Public interface of the generate stage: the synthetic sign-up system that owns the
// OLTP table clientes_clube.

#include <cstdint>
#include <cstdio>
#include <optional>
#include <stop_token>
#include <string>

#include "common/log.h"
#include "common/status.h"

namespace pdv::generate {

struct GenerateOptions {
  std::string oltp_url;
  std::string cpf_key;
  uint64_t seed = 1;
  uint64_t initial = 0;  // customers to bulk-load first
  // Skip the initial load when the table already has customers (a restarted container).
  bool initial_only_if_empty = false;
  double rate = 0;  // then workload operations per second (0: none)
  double duration_s = 0;
  double delete_share = 0.03;
  double retry_timeout_s = 60;
  // Plaintext CPFs of the customers created are appended here (mode 0600), for test and
  // benchmark clients: the database holds only cpf_hash.
  std::optional<std::string> cpf_out;
  // Sign-up dates of the initial load end here (µs since epoch, UTC); default: now.
  std::optional<int64_t> as_of_us;
  std::FILE* progress = nullptr;
  int threads = 2;
};

// Creates the OLTP schema if missing (an existing one that differs from the contract
// is an error, never altered), bulk-loads `initial` customers, then runs the workload
// at `rate` until the duration ends or `stop` is requested (a clean stop between
// transactions is a success). Lost connections are retried with backoff for up to
// retry_timeout_s.
Status Run(const GenerateOptions& options, Logger& log, std::stop_token stop);

}  // namespace pdv::generate
