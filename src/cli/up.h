#pragma once

#include <cstdint>
#include <filesystem>
#include <stop_token>

#include "common/log.h"
#include "common/status.h"

namespace pdv::cli {

struct UpOptions {
  std::filesystem::path data_dir = ".pdv";
  uint64_t initial = 10'000;  // customers loaded on first start
  double rate = 20;           // workload operations per second
};

// Brings up the local platform under `data_dir`: on first use creates it, a pdv.yaml
// (mode 0600) with a fresh cpf_key and the server URLs, and an OLTP PostgreSQL cluster;
// starts that server, loads `initial` customers if the table is empty, and runs the
// sign-up workload until `stop`. Then stops the server. Later stages join as they land.
Status Up(const UpOptions& options, Logger& log, std::stop_token stop);

}  // namespace pdv::cli
