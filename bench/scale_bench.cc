// bench/scale: the platform at a large chain's size on this box. For each N (default
// 20,000,000; several as a comma list, e.g. 1000000,5000000,20000000): the free disk
// checked first; generate, the CDC snapshot, a full transform build and a full cache load,
// each timed with its peak RSS; the disk of each layer and Redis's memory per customer;
// then a workload of R changes/s (default 2,000) for S seconds (default 600) through the
// running pipeline with the freshness probe (OLTP commit -> API answer). Prints one table
// per N and, with several, how each figure grows per customer.
//
// usage: scale_bench PDV_BINARY [--customers N[,N...]] [--rate R] [--seconds S]

#include <fmt/format.h>
#include <signal.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "bench/bench_support.h"
#include "localsvc/child_process.h"
#include "localsvc/local_postgres.h"
#include "localsvc/local_redis.h"
#include "localsvc/scratch_dir.h"
#include "pg/connection.h"

namespace {

using pdv::bench::Die;
using pdv::bench::Must;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// What the platform's four layers take per customer, WAL and indexes included, with
// room to spare (measured at 1M: see the README's bench/scale figures).
constexpr double kDiskBytesPerCustomer = 3000;

int64_t ScalarInt(pdv::pg::Connection& conn, const std::string& sql) {
  auto r = Must(conn.Exec(sql), "query");
  return r.rows() && !r.is_null(0, 0) ? std::stoll(std::string(r.str(0, 0))) : 0;
}

struct Step {
  std::string name;
  double seconds = 0;
  double rows_per_s = 0;
  double peak_rss_mb = 0;
};

// `pdv args...` to completion under /usr/bin/time: its wall time and peak RSS.
Step Timed(const std::string& name, const std::vector<std::string>& pdv_args, int64_t rows,
           const fs::path& dir) {
  fs::path log = dir / (name + ".log"), times = dir / (name + ".time");
  std::vector<std::string> argv = {"/usr/bin/time", "-f", "%e %M", "-o", times.string()};
  argv.insert(argv.end(), pdv_args.begin(), pdv_args.end());
  Must(pdv::localsvc::RunCommand({.argv = argv, .log_file = log.string()}, 36000s), name.c_str());
  double seconds = 0, kb = 0;
  std::istringstream(pdv::bench::ReadFile(times)) >> seconds >> kb;
  return {name, seconds, seconds > 0 ? static_cast<double>(rows) / seconds : 0, kb / 1024};
}

double PeakRssMb(int pid) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024;
  }
  return 0;
}

struct Figures {
  int64_t customers = 0;
  std::vector<Step> steps;
  std::map<std::string, double> disk_mb;  // layer -> MB
  double redis_bytes_per_customer = 0;
  double freshness_p50 = 0, freshness_p99 = 0, freshness_max = 0;  // the workload's probes
  double freshness_last_minute_p99 = 0;                            // pdv status's window
  size_t probes = 0;
  int64_t probes_missed = 0;                   // since the monitor started, warm-up included
  std::map<std::string, double> watch_rss_mb;  // stage -> peak RSS during the workload
  // Where the freshness goes, from the stages' logs during the workload: name -> values.
  std::map<std::string, std::vector<double>> breakdown;
  // The full transform build's nodes as its console reported them (where its time goes).
  std::vector<std::string> transform_nodes;
};

// The numeric field `field` of every `event` line in a stage's key=value log.
std::vector<double> LogValues(const fs::path& log, const std::string& event,
                              const std::string& field) {
  std::vector<double> out;
  std::ifstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (line.find("event=" + event + " ") == std::string::npos) continue;
    auto at = line.find(" " + field + "=");
    if (at == std::string::npos) continue;
    out.push_back(std::strtod(line.c_str() + at + field.size() + 2, nullptr));
  }
  return out;
}

Figures RunOne(const std::string& pdv, int64_t customers, int rate, int seconds) {
  Figures f{.customers = customers};
  auto dir = Must(pdv::localsvc::ScratchDir::Create("pdv-bench-scale"), "scratch dir");
  struct statvfs vfs {};
  if (::statvfs(dir.path().c_str(), &vfs) == 0) {
    double free_gb = static_cast<double>(vfs.f_bavail) * vfs.f_frsize / 1e9;
    double need_gb = kDiskBytesPerCustomer * static_cast<double>(customers) / 1e9;
    fmt::print("bench/scale: {} customers need about {:.1f} GB of disk; {:.1f} GB free under {}\n",
               customers, need_gb, free_gb, dir.path().parent_path().string());
    if (need_gb > free_gb) Die("not enough free disk");
  }
  auto oltp = Must(pdv::localsvc::LocalPostgres::Start({.settings = {"max_wal_size=8GB"}}), "oltp");
  Must(oltp->EnsureDatabase("source_db"), "database");
  auto wh =
      Must(pdv::localsvc::LocalPostgres::Start({.settings = {"max_wal_size=8GB"}}), "warehouse");
  Must(wh->EnsureDatabase("warehouse"), "database");
  auto redis = Must(pdv::localsvc::LocalRedis::Start({}), "redis");
  fs::path config = dir.path() / "pdv.yaml";
  int api_port = 20000 + static_cast<int>(::getpid() % 20000);
  while (!pdv::localsvc::LoopbackPortFree(api_port)) ++api_port;
  std::ofstream(config) << fmt::format(
      "oltp_url: {}\nwarehouse_url: {}\nredis_url: {}\ncpf_key: bench-scale-cpf-key-0123456\n"
      "listen: 127.0.0.1:{}\nlog_level: warn\ncdc:\n  metrics_listen: \"\"\n",
      oltp->Url("source_db"), wh->Url("warehouse"), redis->Url(), api_port);
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {pdv, "--config", config.string()});
    return args;
  };
  f.steps.push_back(Timed("generate", with({"generate", "--initial", std::to_string(customers)}),
                          customers, dir.path()));
  f.steps.push_back(Timed("cdc snapshot", with({"cdc", "--once"}), customers, dir.path()));
  f.steps.push_back(Timed("transform build", with({"transform", "build"}), customers, dir.path()));
  {
    std::istringstream log(pdv::bench::ReadFile(dir.path() / "transform build.log"));
    for (std::string line; std::getline(log, line);) {
      if (line.find(" in ") != std::string::npos && line.find("s]") != std::string::npos) {
        f.transform_nodes.push_back(line);
      }
    }
  }
  f.steps.push_back(Timed("cache full load",
                          with({"--log-level", "info", "cache", "sync", "--full"}), customers,
                          dir.path()));
  std::string cache_log = pdv::bench::ReadFile(dir.path() / "cache full load.log");
  if (auto at = cache_log.find("redis_bytes_per_customer="); at != std::string::npos) {
    f.redis_bytes_per_customer = std::stod(cache_log.substr(at + 25));
  }
  auto o = Must(pdv::pg::Connection::Connect(oltp->Url("source_db")), "oltp");
  auto w = Must(pdv::pg::Connection::Connect(wh->Url("warehouse")), "warehouse");
  auto size = [](pdv::pg::Connection& c, const char* table) {
    return static_cast<double>(
               ScalarInt(c, fmt::format("SELECT pg_total_relation_size('{}')", table))) /
           1e6;
  };
  f.disk_mb["OLTP"] = size(o, "public.clientes_clube");
  f.disk_mb["RAW"] = size(w, "raw.clientes_clube");
  f.disk_mb["staging"] = size(w, "staging.stg_clientes_clube");
  f.disk_mb["dimension"] = size(w, "marts.dim_clientes_clube");

  // The workload through the running pipeline, with the probe.
  std::map<std::string, pdv::localsvc::ChildProcess> stages;
  auto start = [&](const std::string& name, std::vector<std::string> args) {
    stages.emplace(name, Must(pdv::localsvc::ChildProcess::Spawn(
                                  {.argv = with(std::move(args)),
                                   .log_file = (dir.path() / (name + ".log")).string(),
                                   .parent_death_signal = SIGKILL}),
                              name.c_str()));
  };
  // cdc and transform log each batch and run (debug), the cache each sync (info).
  start("cdc", {"--log-level", "debug", "cdc"});
  start("transform", {"--log-level", "debug", "transform", "watch"});
  start("cache", {"--log-level", "info", "cache", "watch"});
  start("serve", {"serve"});
  fs::path key_file = dir.path() / "probe-key";
  Must(pdv::localsvc::RunCommand(
           {.argv = with({"apikey", "create", "probe"}), .log_file = key_file.string()}, 60s),
       "apikey");
  {
    // The key is the output's first line.
    std::string key = pdv::bench::ReadFile(key_file);
    std::ofstream(key_file) << key.substr(0, key.find('\n')) << "\n";
  }
  start("monitor", {"--log-level", "debug", "monitor", "--api-key-file", key_file.string(),
                    "--interval-ms", "200"});
  std::this_thread::sleep_for(5s);
  // The probes before the workload are the warm-up; the figures cover the workload's.
  size_t warm_up_probes = LogValues(dir.path() / "monitor.log", "freshness_probe", "ms").size();
  fmt::print("  workload: {} changes/s for {} s\n", rate, seconds);
  Must(pdv::localsvc::RunCommand(
           {.argv = with({"generate", "--rate", std::to_string(rate), "--duration",
                          std::to_string(seconds), "--delete-share", "0.01"}),
            .log_file = (dir.path() / "workload.log").string()},
           std::chrono::seconds(seconds + 600)),
       "workload");
  fs::path status = dir.path() / "status.json";
  (void)pdv::localsvc::RunCommand({.argv = with({"status", "--json"}), .log_file = status.string()},
                                  60s);
  auto j = nlohmann::json::parse(pdv::bench::ReadFile(status), nullptr, false);
  if (!j.is_discarded() && j["freshness"].is_object()) {
    f.freshness_last_minute_p99 = j["freshness"].value("p99_ms", 0.0);
    f.probes_missed = j["freshness"].value("missed", int64_t{0});
  }
  auto probes = LogValues(dir.path() / "monitor.log", "freshness_probe", "ms");
  probes.erase(probes.begin(), probes.begin() + static_cast<std::ptrdiff_t>(
                                                    std::min(warm_up_probes, probes.size())));
  f.probes = probes.size();
  f.freshness_p50 = pdv::bench::Percentile(probes, 0.5);
  f.freshness_p99 = pdv::bench::Percentile(probes, 0.99);
  f.freshness_max = pdv::bench::Percentile(probes, 1.0);
  f.breakdown["cdc: batch closed, oldest change's age ms"] =
      LogValues(dir.path() / "cdc.log", "cdc_batch", "oldest_commit_ms");
  f.breakdown["transform: incremental run ms"] =
      LogValues(dir.path() / "transform.log", "transform_run", "ms");
  f.breakdown["cache: incremental sync ms"] =
      LogValues(dir.path() / "cache.log", "cache_sync_done", "ms");
  f.breakdown["cache: customers per sync"] =
      LogValues(dir.path() / "cache.log", "cache_sync_done", "applied");
  for (auto& [name, p] : stages) {
    f.watch_rss_mb[name] = PeakRssMb(p.pid());
    p.Signal(SIGTERM);
    p.Wait(30s);
  }
  return f;
}

void Print(const Figures& f) {
  fmt::print("bench/scale: {} customers\n", f.customers);
  fmt::print("  {:<16} {:>9} {:>12} {:>14}\n", "stage", "time s", "rows/s", "peak RSS MB");
  for (const auto& s : f.steps) {
    fmt::print("  {:<16} {:>9.1f} {:>12.0f} {:>14.0f}\n", s.name, s.seconds, s.rows_per_s,
               s.peak_rss_mb);
  }
  for (const auto& line : f.transform_nodes) fmt::print("    transform build: {}\n", line);
  for (const auto& [layer, mb] : f.disk_mb) {
    fmt::print("  disk {:<10} {:>9.0f} MB ({:.0f} B per customer)\n", layer, mb,
               mb * 1e6 / static_cast<double>(f.customers));
  }
  fmt::print("  Redis: {:.1f} B per customer\n", f.redis_bytes_per_customer);
  fmt::print(
      "  workload: freshness p50 {:.1f} ms, p99 {:.1f} ms, max {:.1f} ms over {} probes ({} "
      "missed since the monitor started); p99 of the last 60 s {:.1f} ms\n",
      f.freshness_p50, f.freshness_p99, f.freshness_max, f.probes, f.probes_missed,
      f.freshness_last_minute_p99);
  for (const auto& [name, mb] : f.watch_rss_mb) {
    fmt::print("  peak RSS during the workload: {:<10} {:.0f} MB\n", name, mb);
  }
  for (const auto& [name, v] : f.breakdown) {
    fmt::print("  {:<44} p50 {:>8.1f}  p99 {:>8.1f}  ({} values)\n", name,
               pdv::bench::Percentile(v, 0.5), pdv::bench::Percentile(v, 0.99), v.size());
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2)
    Die("usage: scale_bench PDV_BINARY [--customers N[,N...]] [--rate R] [--seconds S]");
  std::string pdv = argv[1];
  std::vector<int64_t> sizes = {20'000'000};
  int rate = 2000, seconds = 600;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--customers")) {
      sizes.clear();
      std::stringstream list(argv[i + 1]);
      for (std::string n; std::getline(list, n, ',');) sizes.push_back(std::stoll(n));
    } else if (!std::strcmp(argv[i], "--rate")) {
      rate = std::stoi(argv[i + 1]);
    } else if (!std::strcmp(argv[i], "--seconds")) {
      seconds = std::stoi(argv[i + 1]);
    } else {
      Die(fmt::format("unknown option {}", argv[i]));
    }
  }
  ::setenv("PDV_CPF_KEY", "bench-scale-cpf-key-0123456", 1);
  std::vector<Figures> all;
  for (int64_t n : sizes) {
    all.push_back(RunOne(pdv, n, rate, seconds));
    Print(all.back());
  }
  if (all.size() > 1) {
    // Linear growth keeps the per-customer figure flat.
    fmt::print("bench/scale: growth (per customer; flat = linear)\n  {:<22}", "figure");
    for (const auto& f : all) fmt::print(" {:>12}", f.customers);
    fmt::print("\n");
    for (size_t s = 0; s < all[0].steps.size(); ++s) {
      fmt::print("  {:<22}", all[0].steps[s].name + " µs/row");
      for (const auto& f : all) {
        fmt::print(" {:>12.2f}", f.steps[s].seconds * 1e6 / static_cast<double>(f.customers));
      }
      fmt::print("\n  {:<22}", all[0].steps[s].name + " RSS MB");
      for (const auto& f : all) fmt::print(" {:>12.0f}", f.steps[s].peak_rss_mb);
      fmt::print("\n");
    }
    for (const auto& [layer, mb] : all[0].disk_mb) {
      fmt::print("  {:<22}", "disk " + layer + " B/cust");
      for (const auto& f : all) {
        fmt::print(" {:>12.0f}", f.disk_mb.at(layer) * 1e6 / static_cast<double>(f.customers));
      }
      fmt::print("\n");
    }
    fmt::print("  {:<22}", "Redis B/customer");
    for (const auto& f : all) fmt::print(" {:>12.1f}", f.redis_bytes_per_customer);
    fmt::print("\n  {:<22}", "freshness p99 ms");
    for (const auto& f : all) fmt::print(" {:>12.1f}", f.freshness_p99);
    fmt::print("\n");
  }
  return 0;
}
