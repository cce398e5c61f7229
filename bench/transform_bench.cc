// bench/transform: `pdv transform run` of the platform's models with 1,000,000 customers in
// RAW: a full build, then incremental runs after 1,000 new changes each (inserts, updates
// and deletes through the real generator and CDC). Fresh local servers.

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "bench/bench_support.h"
#include "cdc/cdc.h"
#include "common/log.h"
#include "generate/generate.h"
#include "localsvc/local_postgres.h"
#include "pg/connection.h"
#include "transform/transform.h"

namespace {

using pdv::bench::Die;
using pdv::bench::Must;
using pdv::bench::Percentile;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t customers = 1'000'000;
  int rounds = 7;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--customers"))
      customers = std::stoull(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--rounds"))
      rounds = std::stoi(argv[i + 1]);
    else
      Die(fmt::format("unknown option {} (--customers N --rounds R)", argv[i]));
  }
  pdv::Logger log(stderr, "bench", pdv::LogFormat::kKeyValue, pdv::LogLevel::kWarn);
  auto pg = Must(pdv::localsvc::LocalPostgres::Start({}), "start PostgreSQL");
  Must(pg->CreateDatabase("source_db"), "create source_db");
  Must(pg->CreateDatabase("warehouse"), "create warehouse");
  const std::string key = "bench-transform-cpf-key";
  pdv::generate::GenerateOptions gen{
      .oltp_url = pg->Url("source_db"), .cpf_key = key, .initial = customers};
  auto t0 = Clock::now();
  Must(pdv::generate::Run(gen, log, {}), "initial load");
  pdv::cdc::CdcOptions cdc{.oltp_url = pg->Url("source_db"),
                           .warehouse_url = pg->Url("warehouse"),
                           .metrics_listen = ""};
  cdc.once = true;
  Must(pdv::cdc::Run(cdc, log, {}), "cdc snapshot");
  fmt::print(
      "bench/transform: {} customers in RAW in {:.1f} s (generate + cdc snapshot), "
      "PostgreSQL 127.0.0.1:{} (fsync off)\n",
      customers, Seconds(t0), pg->port());

  pdv::transform::TransformOptions run{.command = "run",
                                       .project_dir = std::string(PDV_SOURCE_DIR) + "/transform",
                                       .warehouse_url = pg->Url("warehouse"),
                                       .quiet = true};
  std::vector<double> full;
  for (int i = 0; i < 3; ++i) {
    auto opts = run;
    opts.full_refresh = true;
    auto start = Clock::now();
    auto r = Must(pdv::transform::RunCommand(opts), "full build");
    full.push_back(Seconds(start));
    if (!r.ok()) Die("full build failed");
  }
  fmt::print(
      "  full build (--full-refresh, both models):   median {:>8.1f} ms  (runs: {:.0f} {:.0f} "
      "{:.0f})\n",
      Percentile(full, 0.5) * 1000, full[0] * 1000, full[1] * 1000, full[2] * 1000);

  // 1,000 changes per round: the generator's mixed workload (inserts, updates, deletes).
  std::vector<double> incremental;
  auto wh = Must(pdv::pg::Connection::Connect(pg->Url("warehouse")), "connect");
  for (int i = 0; i < rounds; ++i) {
    auto before = Must(wh.Exec("SELECT count(*) FROM raw.clientes_clube"), "count").str(0, 0);
    pdv::generate::GenerateOptions changes{.oltp_url = pg->Url("source_db"),
                                           .cpf_key = key,
                                           .seed = static_cast<uint64_t>(100 + i),
                                           .rate = 1000,
                                           .duration_s = 1};
    Must(pdv::generate::Run(changes, log, {}), "workload");
    Must(pdv::cdc::Run(cdc, log, {}), "cdc");
    auto after = Must(wh.Exec("SELECT count(*) FROM raw.clientes_clube"), "count").str(0, 0);
    auto start = Clock::now();
    auto r = Must(pdv::transform::RunCommand(run), "incremental run");
    incremental.push_back(Seconds(start));
    if (!r.ok()) Die("incremental run failed");
    if (i == 0) {
      fmt::print(
          "  each round: {} new RAW changes, then `pdv transform run` (load project, connect, "
          "both models, their hooks)\n",
          std::stoll(after) - std::stoll(before));
    }
  }
  double inc = Percentile(incremental, 0.5);
  fmt::print(
      "  incremental run after ~1,000 changes:       median {:>8.1f} ms  (p90 {:.1f} ms, {} "
      "rounds)\n",
      inc * 1000, Percentile(incremental, 0.9) * 1000, rounds);
  fmt::print(
      "  ratio full / incremental                    {:>8.0f}x    (targets: < 100 ms, >= 100x)\n",
      Percentile(full, 0.5) / inc);
  return 0;
}
