// bench/transform: `pdv transform run` of the platform's models with 1,000,000 customers in
// RAW: a full build, then incremental runs after 1,000 new changes each (inserts, updates
// and deletes through the real generator and CDC). Then two generated projects: parse and
// compile of 2,000 models, and the build of 40 independent-ish models with 1 and 4
// threads. Fresh local servers.

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "bench/bench_support.h"
#include "cdc/cdc.h"
#include "common/log.h"
#include "generate/generate.h"
#include "localsvc/local_postgres.h"
#include "localsvc/scratch_dir.h"
#include "pg/connection.h"
#include "transform/graph.h"
#include "transform/project.h"
#include "transform/runner.h"
#include "transform/transform.h"

namespace {

using pdv::bench::Die;
using pdv::bench::Must;
using pdv::bench::Percentile;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

void WriteFile(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

void WriteProfile(const std::filesystem::path& dir, const std::string& name, int port,
                  const std::string& password, int threads) {
  WriteFile(dir / "dbt_project.yml",
            fmt::format("name: {0}\nversion: '1.0'\nconfig-version: 2\nprofile: {0}\n", name));
  WriteFile(dir / "profiles.yml",
            fmt::format("{}:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n"
                        "      host: 127.0.0.1\n      port: {}\n      user: postgres\n"
                        "      pass: '{}'\n      dbname: warehouse\n      schema: {}\n"
                        "      threads: {}\n",
                        name, port, password, name, threads));
}

// 2,000 models, each reading one to three earlier ones, with a macro, a loop and a config
// call; a generic test on every tenth. Parse (load) and compile, without a database.
void ParseAndCompile(const std::filesystem::path& dir, int port, const std::string& password) {
  WriteProfile(dir, "big", port, password, 1);
  WriteFile(dir / "macros/cents.sql",
            "{% macro cents(col) %}({{ col }} * 100)::bigint{% endmacro %}\n");
  std::string schema = "version: 2\nmodels:\n";
  for (int i = 0; i < 2000; ++i) {
    std::string sql = fmt::format("{{{{ config(materialized='{}', tags=['t{}']) }}}}\nselect ",
                                  i % 3 ? "view" : "table", i % 7);
    sql += fmt::format("{} as id, {} as amount", i, "{{ cents('1.5') }}");
    sql += "\n{% for c in ['a', 'b', 'c'] %}, '{{ c }}' as col_{{ c }}{% endfor %}\nfrom ";
    if (i == 0) {
      sql += "(select 1) s\n";
    } else {
      sql += fmt::format("{{{{ ref('m{:04}') }}}} s\n", (i * 7919) % i);
      for (int k = 1; k <= (i % 3) && i > k; ++k) {
        sql += fmt::format("join {{{{ ref('m{:04}') }}}} j{} on true\n", i - k, k);
      }
    }
    WriteFile(dir / fmt::format("models/m{:04}.sql", i), sql);
    if (i % 10 == 0) {
      schema += fmt::format(
          "  - name: m{:04}\n    columns:\n      - name: id\n"
          "        data_tests: [not_null]\n",
          i);
    }
  }
  WriteFile(dir / "models/schema.yml", schema);
  std::vector<double> parse, compile;
  for (int round = 0; round < 3; ++round) {
    auto start = Clock::now();
    auto project = Must(pdv::transform::LoadProject({.project_dir = dir.string()}), "load");
    auto graph = Must(pdv::transform::Graph::Build(project), "graph");
    parse.push_back(Seconds(start));
    start = Clock::now();
    pdv::transform::TransformOptions opts{.command = "compile", .quiet = true};
    pdv::transform::Runner runner(project, graph, nullptr, opts);
    size_t nodes = 0;
    for (const auto& id : graph.order()) {
      const auto& n = project.nodes.at(id);
      if (n.resource_type != pdv::transform::NodeType::kModel &&
          n.resource_type != pdv::transform::NodeType::kTest)
        continue;
      auto sql = runner.Compile(n);
      if (!sql.ok()) Die("compile " + id + ": " + sql.message());
      ++nodes;
    }
    compile.push_back(Seconds(start));
    if (round == 0) {
      fmt::print("  generated project: 2,000 models, {} data tests ({} nodes compiled)\n",
                 nodes - 2000, nodes);
    }
  }
  fmt::print(
      "  parse (load + DAG):                          median {:>8.1f} ms  (runs: {:.0f} {:.0f} "
      "{:.0f})\n",
      Percentile(parse, 0.5) * 1000, parse[0] * 1000, parse[1] * 1000, parse[2] * 1000);
  fmt::print(
      "  compile every model and test:                median {:>8.1f} ms  (runs: {:.0f} {:.0f} "
      "{:.0f})\n",
      Percentile(compile, 0.5) * 1000, compile[0] * 1000, compile[1] * 1000, compile[2] * 1000);
}

// 40 models in 8 chains of 5; each does `work` (the same query per model). Built with 1 and
// with 4 threads, three times each.
void Threads(const std::filesystem::path& dir, int port, const std::string& password,
             const std::string& label, const std::string& work) {
  WriteProfile(dir, "forty", port, password, 1);
  for (int chain = 0; chain < 8; ++chain) {
    for (int step = 0; step < 5; ++step) {
      std::string from =
          step == 0 ? "(select 1) s" : fmt::format("{{{{ ref('c{}_{}') }}}} s", chain, step - 1);
      WriteFile(dir / fmt::format("models/c{}_{}.sql", chain, step),
                fmt::format("{{{{ config(materialized='table') }}}}\nselect ({}) as v from {}\n",
                            work, from));
    }
  }
  std::vector<double> one, four;
  for (int round = 0; round < 3; ++round) {
    for (int threads : {1, 4}) {
      pdv::transform::TransformOptions opts{.command = "run",
                                            .project_dir = dir.string(),
                                            .profiles_dir = dir.string(),
                                            .threads = threads,
                                            .quiet = true};
      auto start = Clock::now();
      auto r = Must(pdv::transform::RunCommand(opts), "run forty");
      (threads == 1 ? one : four).push_back(Seconds(start));
      if (!r.ok() || r.pass != 40) Die("the 40-model build failed");
    }
  }
  double a = Percentile(one, 0.5), b = Percentile(four, 0.5);
  fmt::print("  40 models, {}: 1 thread median {:.0f} ms, 4 threads median {:.0f} ms: {:.2f}x\n",
             label, a * 1000, b * 1000, a / b);
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t customers = 1'000'000;
  int rounds = 7;
  bool projects_only = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--projects-only")) {
      projects_only = true;
    } else if (i + 1 < argc && !std::strcmp(argv[i], "--customers")) {
      customers = std::stoull(argv[++i]);
    } else if (i + 1 < argc && !std::strcmp(argv[i], "--rounds")) {
      rounds = std::stoi(argv[++i]);
    } else {
      Die(fmt::format("unknown option {} (--customers N --rounds R --projects-only)", argv[i]));
    }
  }
  pdv::Logger log(stderr, "bench", pdv::LogFormat::kKeyValue, pdv::LogLevel::kWarn);
  auto pg = Must(pdv::localsvc::LocalPostgres::Start({}), "start PostgreSQL");
  Must(pg->CreateDatabase("source_db"), "create source_db");
  Must(pg->CreateDatabase("warehouse"), "create warehouse");
  {
    auto scratch = Must(pdv::localsvc::ScratchDir::Create("pdv-bench-projects"), "scratch dir");
    fmt::print("bench/transform: generated projects (PostgreSQL 127.0.0.1:{})\n", pg->port());
    ParseAndCompile(scratch.path() / "big", pg->port(), pg->password());
    Threads(scratch.path() / "forty_cpu", pg->port(), pg->password(),
            "each ~40 ms of CPU (a 400,000-row aggregate)",
            "select count(*) from generate_series(1, 400000)");
    Threads(scratch.path() / "forty_wait", pg->port(), pg->password(),
            "each waiting 50 ms (as on a warehouse with cores to spare)",
            "select 1 from pg_sleep(0.05)");
  }
  if (projects_only) return 0;
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
