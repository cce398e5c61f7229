#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stop_token>
#include <string>

#include "common/log.h"
#include "common/status.h"

namespace pdv::cli {

struct UpOptions {
  std::filesystem::path data_dir = ".pdv";
  uint64_t initial = 10'000;  // customers loaded when the OLTP table is empty
  double rate = 20;           // workload operations per second
  // The API's address on first use (later: what pdv.yaml says).
  std::optional<std::string> listen;
  // Seconds to wait for the first answered lookup before printing the banner.
  int ready_timeout_s = 180;
  int probe_interval_ms = 1000;  // the freshness probe's period
};

// The whole platform on this machine, under `data_dir`: on first use creates it, a
// pdv.yaml (mode 0600) with the servers' URLs and a fresh cpf_key, and an API key
// (shown once, kept in <data_dir>/api-key, mode 0600). Starts an OLTP PostgreSQL, a
// warehouse PostgreSQL and a Redis there, then generate, cdc, transform watch, cache watch,
// serve and monitor as supervised child processes (logs in <data_dir>/logs/), prints the
// API address, the key and a curl for a real customer, and runs until `stop` (Ctrl-C or
// `pdv down`). Stops the stages, then the servers. A second `up` reuses everything.
// A port in use, an unwritable directory or a missing server binary fails before anything
// is left running.
Status Up(const UpOptions& options, Logger& log, std::stop_token stop);

// Stops the `pdv up` running for `data_dir` and waits until it has exited.
Status Down(const std::filesystem::path& data_dir, std::chrono::seconds timeout);

}  // namespace pdv::cli
