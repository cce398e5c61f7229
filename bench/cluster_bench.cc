// bench/cluster: lookups/s and p99 through HAProxy to two `pdv serve` replicas on a
// three-master Redis Cluster, beside one `pdv serve` on a standalone Redis, on this machine
// in one run (wrk -t1 -c32, random CPFs over N customers). Then the failover windows,
// measured by a POS loop through HAProxy: a cluster master SIGKILLed (until its replica
// is promoted) and a serve replica SIGKILLed (until HAProxy stops sending to it).
//
// usage: cluster_bench PDV_BINARY [--seconds S] [--customers N]

#include <fmt/format.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>

#include "api/apikeys.h"
#include "bench/bench_support.h"
#include "bench/dimension_fixture.h"
#include "bench/http_load.h"
#include "cache/cache.h"
#include "common/log.h"
#include "localsvc/child_process.h"
#include "localsvc/local_postgres.h"
#include "localsvc/local_redis.h"
#include "localsvc/redis_cluster.h"
#include "localsvc/scratch_dir.h"
#include "pg/connection.h"

namespace {

using pdv::bench::Die;
using pdv::bench::Must;
using pdv::bench::Percentile;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
constexpr char kKey[] = "bench-cluster-cpf-key-0123";
constexpr char kClusterPassword[] = "bench-cluster-password-01";

pdv::localsvc::ChildProcess Serve(const std::string& pdv, int port, const std::string& redis_url,
                                  const std::string& threads, const fs::path& log) {
  return Must(pdv::localsvc::ChildProcess::Spawn(
                  {.argv = {pdv, "--log-level", "warn", "serve", "--listen",
                            fmt::format("127.0.0.1:{}", port), "--redis-url", redis_url,
                            "--rate-per-key", "0", "--rate-per-ip", "0", "--max-connections-per-ip",
                            "0", "--threads", threads},
                   .log_file = log.string(),
                   .parent_death_signal = SIGKILL}),
              "pdv serve");
}

// Lookups through the balancer one after another, each answer timed and kept.
class PosLoop {
 public:
  PosLoop(int port, std::string key, std::vector<std::string> cpfs)
      : port_(port), key_(std::move(key)), cpfs_(std::move(cpfs)) {
    thread_ = std::thread([this] {
      for (size_t i = 0; !done_; ++i) {
        auto started = Clock::now();
        std::string path = "/v1/clientes/" + cpfs_[i % cpfs_.size()];
        int status = pdv::bench::GetStatus("127.0.0.1", port_, path, key_, 3000ms);
        // A connection closed without an answer: a POS retries its GET once.
        if (status == 0) {
          ++retries_;
          status = pdv::bench::GetStatus("127.0.0.1", port_, path, key_, 3000ms);
        }
        auto ended = Clock::now();
        std::lock_guard lock(mu_);
        answers_.push_back({started, ended, status});
        consecutive_ok_ = status == 200 ? consecutive_ok_ + 1 : 0;
      }
    });
  }
  ~PosLoop() {
    done_ = true;
    thread_.join();
  }
  int consecutive_ok() {
    std::lock_guard lock(mu_);
    return consecutive_ok_;
  }
  void ResetRun() {
    std::lock_guard lock(mu_);
    consecutive_ok_ = 0;
    retries_ = 0;
  }
  // From `fault` on: the last non-200's distance from it, the 503s, other answers, the
  // p99 of the 200s.
  std::string Window(Clock::time_point fault) {
    std::lock_guard lock(mu_);
    double last = 0;
    int unavailable = 0, other = 0;
    std::string other_codes;
    std::vector<double> ok_ms;
    for (const auto& a : answers_) {
      if (a.started < fault) continue;
      if (a.status == 200) {
        ok_ms.push_back(std::chrono::duration<double, std::milli>(a.ended - a.started).count());
        continue;
      }
      (a.status == 503 ? unavailable : other)++;
      if (a.status != 503 && other_codes.size() < 40) other_codes += " " + std::to_string(a.status);
      last = std::chrono::duration<double>(a.ended - fault).count();
    }
    return fmt::format(
        "non-200 answers until {:.2f} s after the fault ({} 503s, {} other{}; {} retries of a "
        "connection closed unanswered), p99 of {} answered {:.2f} ms",
        last, unavailable, other, other ? ":" + other_codes : "", retries_.load(), ok_ms.size(),
        Percentile(ok_ms, 0.99));
  }

 private:
  struct Answer {
    Clock::time_point started, ended;
    int status;
  };
  int port_;
  std::string key_;
  std::vector<std::string> cpfs_;
  std::atomic<bool> done_{false};
  std::mutex mu_;
  std::vector<Answer> answers_;
  int consecutive_ok_ = 0;
  std::atomic<int> retries_{0};
  std::thread thread_;
};

bool WaitUntil(std::chrono::seconds timeout, const std::function<bool()>& cond) {
  auto end = Clock::now() + timeout;
  while (Clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) Die("usage: cluster_bench PDV_BINARY [--seconds S] [--customers N]");
  std::string pdv = argv[1];
  int seconds = 10;
  int customers = 100'000;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--seconds"))
      seconds = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--customers"))
      customers = std::stoi(argv[i + 1]);
  }
  auto dir = Must(pdv::localsvc::ScratchDir::Create("pdv-bench-cluster"), "scratch dir");
  auto pg = Must(pdv::localsvc::LocalPostgres::Start({}), "postgres");
  auto conn = Must(pdv::pg::Connection::Connect(pg->Url()), "connect");
  auto fixture = pdv::bench::FillDimension(conn, customers, kKey);
  pdv::Logger log(stderr, "bench", pdv::LogFormat::kKeyValue, pdv::LogLevel::kWarn);

  auto standalone = Must(pdv::localsvc::LocalRedis::Start({}), "redis");
  auto cluster = Must(pdv::localsvc::LocalRedisCluster::Start(kClusterPassword), "redis cluster");
  for (const std::string& url : {standalone->Url(), cluster->Url()}) {
    Must(pdv::cache::SyncFull({.warehouse_url = pg->Url(), .redis_url = url}, log, {}),
         "cache sync");
  }
  std::string standalone_key =
      Must(pdv::api::CreateApiKey(standalone->Url(), pg->Url(), "bench-standalone"), "api key");
  std::string cluster_key =
      Must(pdv::api::CreateApiKey(cluster->Url(), pg->Url(), "bench-cluster"), "api key");

  ::setenv("PDV_CPF_KEY", kKey, 1);
  int single_port = Must(pdv::localsvc::FreeLoopbackPort(), "port");
  int a_port = Must(pdv::localsvc::FreeLoopbackPort(), "port");
  int b_port = Must(pdv::localsvc::FreeLoopbackPort(), "port");
  int lb_port = Must(pdv::localsvc::FreeLoopbackPort(), "port");
  auto single = Serve(pdv, single_port, standalone->Url(), "0", dir.path() / "serve.log");
  auto replica_a = Serve(pdv, a_port, cluster->Url(), "1", dir.path() / "serve-a.log");
  auto replica_b = Serve(pdv, b_port, cluster->Url(), "1", dir.path() / "serve-b.log");
  fs::path cfg = dir.path() / "haproxy.cfg";
  std::ofstream(cfg) << fmt::format(
      "global\n  maxconn 4000\n"
      "defaults\n  mode http\n  timeout connect 300ms\n  timeout client 10s\n"
      "  timeout server 1s\n  retries 3\n  option redispatch 1\n  option http-keep-alive\n"
      "  retry-on conn-failure empty-response response-timeout\n"
      "frontend api\n  bind 127.0.0.1:{}\n  default_backend serve\n"
      "backend serve\n  balance roundrobin\n  option httpchk GET /ready\n"
      "  http-check expect status 200\n  default-server inter 200ms fall 2 rise 2\n"
      "  server a 127.0.0.1:{} check\n  server b 127.0.0.1:{} check\n",
      lb_port, a_port, b_port);
  auto haproxy =
      Must(pdv::localsvc::ChildProcess::Spawn({.argv = {"haproxy", "-f", cfg.string(), "-db"},
                                               .log_file = (dir.path() / "haproxy.log").string(),
                                               .parent_death_signal = SIGKILL}),
           "haproxy");
  for (int port : {single_port, a_port, b_port, lb_port}) pdv::bench::WaitHttp(port);
  const std::string probe = "/v1/clientes/" + fixture.cpfs[1];
  if (!WaitUntil(30s, [&] {
        return pdv::bench::GetStatus("127.0.0.1", lb_port, probe, cluster_key, 1000ms) == 200 &&
               pdv::bench::GetStatus("127.0.0.1", single_port, probe, standalone_key, 1000ms) ==
                   200;
      })) {
    Die("the API did not answer through HAProxy");
  }

  {
    std::ofstream cpf_file(dir.path() / "cpfs.txt");
    for (const auto& c : fixture.cpfs) cpf_file << c << "\n";
    for (const auto& [name, key] :
         {std::pair{"standalone.lua", standalone_key}, std::pair{"cluster.lua", cluster_key}}) {
      std::ofstream(dir.path() / name) << fmt::format(
          "local keys = {{}}\nfor line in io.lines(\"{}\") do keys[#keys + 1] = line end\n"
          "request = function()\n  return wrk.format(\"GET\", \"/v1/clientes/\" .. "
          "keys[math.random(#keys)], {{[\"X-API-Key\"] = \"{}\"}})\nend\n",
          (dir.path() / "cpfs.txt").string(), key);
    }
  }
  fmt::print("bench/cluster: {} customers, wrk -t1 -c32 -d{}s, random keys, all on this machine\n",
             customers, seconds);
  auto url = [](int port) { return fmt::format("http://127.0.0.1:{}", port); };
  auto s = pdv::bench::Wrk(url(single_port), dir.path() / "standalone.lua", seconds, dir.path(),
                           "standalone");
  auto c = pdv::bench::Wrk(url(lb_port), dir.path() / "cluster.lua", seconds, dir.path(), "lb");
  auto d = pdv::bench::Wrk(url(a_port), dir.path() / "cluster.lua", seconds, dir.path(), "direct");
  auto row = [](const char* what, const pdv::bench::WrkResult& r) {
    fmt::print("  {:<58} {:>8.0f} req/s  p50 {:>6.3f} ms  p99 {:>6.3f} ms{}\n", what, r.rps,
               r.p50_ms, r.p99_ms, r.errors.empty() ? "" : "  non-2xx " + r.errors);
  };
  row("one serve (2 loops), standalone Redis", s);
  row("HAProxy -> two serves (1 loop each), 3-master Redis Cluster", c);
  row("one serve (1 loop), Redis Cluster, no HAProxy", d);
  fmt::print("  cluster through HAProxy / standalone: {:.2f}x\n", c.rps / s.rps);

  // Failover windows, under a POS loop through HAProxy.
  std::vector<std::string> loop_cpfs(
      fixture.cpfs.begin(), fixture.cpfs.begin() + std::min<size_t>(2000, fixture.cpfs.size()));
  PosLoop loop(lb_port, cluster_key, loop_cpfs);
  if (!WaitUntil(30s, [&] { return loop.consecutive_ok() >= 200; })) Die("the POS loop fails");

  size_t master = 0;
  for (size_t i = 0; i < cluster->nodes().size(); ++i) {
    if (pdv::localsvc::RedisCliOutput(cluster->Addresses()[i], kClusterPassword, {"ROLE"})
            .rfind("master", 0) == 0) {
      master = i;
      break;
    }
  }
  loop.ResetRun();
  auto fault = Clock::now();
  cluster->nodes()[master]->Kill();
  std::vector<std::string> survivors = cluster->Addresses();
  survivors.erase(survivors.begin() + static_cast<long>(master));
  Must(pdv::localsvc::WaitForRedisCluster(survivors, kClusterPassword, 60s), "failover");
  if (!WaitUntil(60s, [&] { return loop.consecutive_ok() >= 300; }))
    Die("no service after failover");
  fmt::print("  cluster master SIGKILLed: {}\n", loop.Window(fault));

  loop.ResetRun();
  fault = Clock::now();
  replica_b.Signal(SIGKILL);
  if (!WaitUntil(60s, [&] { return loop.consecutive_ok() >= 300; }))
    Die("no service after replica kill");
  fmt::print("  serve replica SIGKILLed:  {}\n", loop.Window(fault));
  (void)haproxy;
  return 0;
}
