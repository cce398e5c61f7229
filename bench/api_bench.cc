// bench/api: `pdv serve` under wrk (32 connections, random CPFs over 100,000 customers),
// beside the original platform's API (FastAPI/uvicorn/redis-py, re-created in
// bench/reference/original_api.py) and nginx serving a static JSON of our answer's size,
// in one run; then our p99 at half our maximum rate (open-loop, fixed schedule), and Redis
// memory per customer. With --connections N: N registers' keep-alive connections at once,
// sending --rate requests per second between them on a fixed schedule (20,000 by
// default): p50/p99/p99.9, and the server's memory per connection.
//
// usage: api_bench PDV_BINARY REFERENCE_DIR [--seconds S] [--customers N]
//                  [--connections N [--rate R]] [--threads T (pdv serve's loops and nginx's
//                  workers: 1 by default, 0 one per core)]
//                  [--rounds R (ours and nginx in turn, 5 by default)]

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <thread>

#include "api/apikeys.h"
#include "bench/bench_support.h"
#include "bench/dimension_fixture.h"
#include "bench/http_load.h"
#include "bench/terminal_load.h"
#include "cache/cache.h"
#include "common/cpf.h"
#include "common/cpf_hasher.h"
#include "common/log.h"
#include "localsvc/child_process.h"
#include "localsvc/local_postgres.h"
#include "localsvc/local_redis.h"
#include "localsvc/scratch_dir.h"
#include "pg/connection.h"
#include "redis/client.h"

namespace {

using pdv::bench::Die;
using pdv::bench::FixedRate;
using pdv::bench::Must;
using pdv::bench::Percentile;
using pdv::bench::TerminalRun;
using pdv::bench::WaitHttp;
using pdv::bench::Wrk;
using pdv::bench::WrkResult;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
constexpr char kKey[] = "bench-api-cpf-key-0123";

// GET /metrics from the server on 127.0.0.1:port.
std::string Metrics(int port) {
  std::string req = "GET /metrics HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n";
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{.sin_family = AF_INET,
                .sin_port = htons(static_cast<uint16_t>(port)),
                .sin_addr = {htonl(INADDR_LOOPBACK)}};
  std::string text;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    ::send(fd, req.data(), req.size(), 0);
    char buf[8192];
    for (ssize_t k; (k = ::recv(fd, buf, sizeof(buf), 0)) > 0;)
      text.append(buf, static_cast<size_t>(k));
  }
  ::close(fd);
  return text;
}

// A metric's value in /metrics text (-1 if absent).
double Metric(const std::string& text, const std::string& name) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex("\n" + name + " ([0-9.e+]+)"))) return -1;
  return std::stod(m[1]);
}

// A process's resident memory, in bytes.
double RssBytes(pid_t pid) {
  std::string status = pdv::bench::ReadFile(fmt::format("/proc/{}/status", pid));
  auto at = status.find("VmRSS:");
  if (at == std::string::npos) return 0;
  return std::stod(status.substr(at + 6)) * 1024;
}

// CPU seconds (user and system) a process and its live descendants used so far (nginx's
// master and its workers; every thread of ours).
double TreeCpuSeconds(pid_t pid) {
  std::string stat = pdv::bench::ReadFile(fmt::format("/proc/{}/stat", pid));
  auto fields = stat.rfind(')');
  if (fields == std::string::npos) return 0;
  std::istringstream in(stat.substr(fields + 2));
  std::string f;
  double ticks = 0;
  for (int i = 3; in >> f && i <= 15; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(f);  // utime, stime
  }
  double seconds = ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
  std::istringstream children(
      pdv::bench::ReadFile(fmt::format("/proc/{0}/task/{0}/children", pid)));
  for (pid_t child; children >> child;) seconds += TreeCpuSeconds(child);
  return seconds;
}

// Memory the kernel holds for TCP sockets (both ends of every connection), in bytes.
double KernelTcpBytes() {
  std::string sockstat = pdv::bench::ReadFile("/proc/net/sockstat");
  std::smatch m;
  if (!std::regex_search(sockstat, m, std::regex(R"(TCP: .* mem (\d+))"))) return 0;
  return std::stod(m[1]) * static_cast<double>(::sysconf(_SC_PAGESIZE));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) Die("usage: api_bench PDV_BINARY REFERENCE_DIR [--seconds S] [--customers N]");
  std::string pdv = argv[1];
  fs::path reference = argv[2];
  int seconds = 10;
  int customers = 100'000;
  int terminals = 0;
  double terminal_rate = 20'000;
  // One event loop (and one nginx worker): wrk takes one of this machine's 2 cores, and
  // both servers are fastest here with one (nginx 1 worker ~67k req/s against ~60k with 2).
  std::string serve_threads = "1";
  int rounds = 5;
  for (int i = 3; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--seconds"))
      seconds = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--customers"))
      customers = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--connections"))
      terminals = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--rate"))
      terminal_rate = std::stod(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--threads"))
      serve_threads = argv[i + 1];
    else if (!std::strcmp(argv[i], "--rounds"))
      rounds = std::max(1, std::stoi(argv[i + 1]));
    else
      Die(fmt::format("unknown option {}", argv[i]));
  }
  auto dir = Must(pdv::localsvc::ScratchDir::Create("pdv-bench-api"), "scratch dir");
  auto pg = Must(pdv::localsvc::LocalPostgres::Start({}), "postgres");
  auto redis_server = Must(pdv::localsvc::LocalRedis::Start({}), "redis");
  auto conn = Must(pdv::pg::Connection::Connect(pg->Url()), "connect");
  // Customers: real CPFs (their HMAC in the dimension), the same UUIDs for the original.
  auto [cpfs, ids] = pdv::bench::FillDimension(conn, customers, kKey);

  pdv::Logger log(stderr, "bench", pdv::LogFormat::kKeyValue, pdv::LogLevel::kWarn);
  pdv::cache::CacheOptions cache{.warehouse_url = pg->Url(), .redis_url = redis_server->Url()};
  auto synced = Must(pdv::cache::SyncFull(cache, log, {}), "cache sync");

  // The original layout: one hash per customer, keyed by UUID.
  auto redis = Must(pdv::redis::Client::Connect(redis_server->Url()), "redis");
  auto before = Must(redis.Command({"INFO", "memory"}), "info");
  auto used = [](std::string_view info) {
    auto at = info.find("used_memory:");
    return std::stod(std::string(info.substr(at + 12, info.find('\r', at) - at - 12)));
  };
  double used_before = used(before.str());
  for (size_t i = 0; i < ids.size(); ++i) {
    redis.Append({"HSET", "cliente:" + ids[i], "cliente_id", ids[i], "status_clube",
                  i % 7 ? "ATIVO" : "INATIVO", "origem_campanha", "black_friday",
                  "opt_in_marketing", "true", "ticket_medio_estimado", "87.50"});
    if (i % 1000 == 999 || i + 1 == ids.size()) {
      for (size_t k = i - i % 1000; k <= i; ++k) Must(redis.GetReply(), "hset");
    }
  }
  double original_per_customer =
      (used(Must(redis.Command({"INFO", "memory"}), "info").str()) - used_before) / ids.size();
  std::string key =
      Must(pdv::api::CreateApiKey(redis_server->Url(), pg->Url(), "bench"), "api key");

  // Servers: ours, the original's, nginx.
  int ours = Must(pdv::localsvc::FreeLoopbackPort(), "port");
  int theirs = Must(pdv::localsvc::FreeLoopbackPort(), "port");
  int static_port = Must(pdv::localsvc::FreeLoopbackPort(), "port");
  ::setenv("PDV_CPF_KEY", kKey, 1);
  auto serve =
      Must(pdv::localsvc::ChildProcess::Spawn(
               {.argv = {pdv, "--log-level", "warn", "serve", "--listen",
                         fmt::format("127.0.0.1:{}", ours), "--redis-url", redis_server->Url(),
                         "--rate-per-key", "0", "--rate-per-ip", "0", "--max-connections-per-ip",
                         "0", "--threads", serve_threads, "--max-connections",
                         std::to_string(std::max(10'000, terminals + 100))},
                .log_file = (dir.path() / "serve.log").string(),
                .parent_death_signal = SIGKILL}),
           "pdv serve");
  ::setenv("REDIS_PORT", std::to_string(redis_server->port()).c_str(), 1);
  ::setenv("REDIS_PASSWORD", redis_server->password().c_str(), 1);
  auto uvicorn = Must(pdv::localsvc::ChildProcess::Spawn(
                          {.argv = {"/usr/bin/python3", "-m", "uvicorn", "--app-dir",
                                    reference.string(), "original_api:app", "--host", "127.0.0.1",
                                    "--port", std::to_string(theirs), "--loop", "uvloop", "--http",
                                    "httptools", "--log-level", "warning", "--no-access-log"},
                           .log_file = (dir.path() / "uvicorn.log").string(),
                           .parent_death_signal = SIGKILL}),
                      "uvicorn");
  WaitHttp(ours);
  WaitHttp(theirs);
  // Our answer, served statically by nginx at the same size.
  std::string probe =
      fmt::format("GET /v1/clientes/{} HTTP/1.1\r\nHost: b\r\nX-API-Key: {}\r\n\r\n", cpfs[1], key);
  auto sample = FixedRate(ours, {probe}, 10, 1, 1);
  fs::create_directories(dir.path() / "www");
  {
    std::ofstream(dir.path() / "www" / "answer.json")
        << R"({"cliente_id":"00000002-0000-4000-8000-000000000002","elegivel_promocao":true,"motivo":null,"elegivel_a_partir_de":"2025-01-01T00:00:00Z","status_clube":"ATIVO","opt_in_marketing":true,"primeiro_nome":"Maria","ticket_medio_estimado":87.5,"origem_campanha":"black_friday","atualizado_em":"2025-06-01T00:00:00Z"})";
    std::ofstream(dir.path() / "nginx.conf") << fmt::format(
        "worker_processes {2}; pid {0}/nginx.pid; error_log {0}/nginx-error.log; daemon off;\n"
        "worker_rlimit_nofile {3}; events {{ worker_connections {3}; }}\n"
        "http {{ access_log off; client_body_temp_path {0}; proxy_temp_path {0}; "
        "fastcgi_temp_path {0}; uwsgi_temp_path {0}; scgi_temp_path {0}; "
        "open_file_cache max=64 inactive=60s; server {{ listen 127.0.0.1:{1}; location / {{ "
        "root {0}/www; default_type application/json; rewrite ^ /answer.json break; }} }} }}\n",
        dir.path().string(), static_port, serve_threads == "0" ? "auto" : serve_threads,
        std::max(1024, terminals + 200));
  }
  auto nginx = Must(
      pdv::localsvc::ChildProcess::Spawn(
          {.argv = {"nginx", "-c", (dir.path() / "nginx.conf").string(), "-p", dir.path().string()},
           .log_file = (dir.path() / "nginx.log").string(),
           .parent_death_signal = SIGKILL}),
      "nginx");
  // A SIGKILLed master leaves its workers running: stop nginx as it is meant to be (SIGQUIT
  // makes the master end its workers and wait for them) when the bench ends.
  struct StopNginx {
    pdv::localsvc::ChildProcess& master;
    ~StopNginx() {
      master.Signal(SIGQUIT);
      master.Wait(std::chrono::seconds(10));
    }
  } stop_nginx{nginx};
  WaitHttp(static_port);

  // wrk scripts: random keys over all customers.
  {
    std::ofstream cpf_file(dir.path() / "cpfs.txt"), id_file(dir.path() / "ids.txt");
    for (const auto& c : cpfs) cpf_file << c << "\n";
    for (const auto& i : ids) id_file << i << "\n";
    auto script = [&](const std::string& name, const std::string& list, const std::string& path,
                      const std::string& header) {
      std::ofstream(dir.path() / name) << fmt::format(
          "local keys = {{}}\nfor line in io.lines(\"{}\") do keys[#keys + 1] = line end\n"
          "request = function()\n  return wrk.format(\"GET\", \"{}\" .. keys[math.random(#keys)] "
          ".. \"{}\", {})\nend\n",
          (dir.path() / list).string(), path, name == "original.lua" ? "/status" : "", header);
    };
    script("ours.lua", "cpfs.txt", "/v1/clientes/",
           fmt::format("{{[\"X-API-Key\"] = \"{}\"}}", key));
    script("original.lua", "ids.txt", "/cliente/", "nil");
    // The same requests to nginx, which answers every path with the static file: wrk
    // then does the same work for both servers (it shares this machine with them).
    script("static.lua", "cpfs.txt", "/v1/clientes/",
           fmt::format("{{[\"X-API-Key\"] = \"{}\"}}", key));
  }
  fmt::print(
      "bench/api: {} customers, wrk -t1 -c32 -d{}s, random keys, all on this machine; ours and "
      "nginx {} rounds in turn (the machine's speed drifts: a ratio of neighbouring runs); "
      "pdv serve with {} event loop(s), nginx with as many workers\n",
      customers, seconds, rounds, serve_threads == "0" ? "one per core" : serve_threads);
  auto near_counts = [&] {
    std::string text = Metrics(ours);
    return std::pair{Metric(text, "pdv_api_near_cache_hits_total"),
                     Metric(text, "pdv_api_near_cache_misses_total")};
  };
  auto near_share = [](std::pair<double, double> a, std::pair<double, double> b) {
    double h = b.first - a.first, m = b.second - a.second;
    return h + m > 0 ? 100 * h / (h + m) : 0.0;
  };
  // First while each loop's near-cache fills (every customer is new to it), then with it
  // warm (the same random keys again): what the API does with and without it.
  auto before_cold = near_counts();
  auto cold = Wrk(fmt::format("http://127.0.0.1:{}", ours), dir.path() / "ours.lua", seconds,
                  dir.path(), "ours-cold");
  auto after_cold = near_counts();
  std::vector<WrkResult> warm, statics;
  std::vector<double> ratios, cpu_ratios;
  // The server's CPU per answer: what it costs, whatever share of the 2 cores wrk leaves.
  auto cpu_us = [](pid_t server, const std::function<WrkResult()>& run, WrkResult* result) {
    double before = TreeCpuSeconds(server);
    *result = run();
    return result->requests > 0 ? (TreeCpuSeconds(server) - before) * 1e6 / result->requests : 0;
  };
  std::vector<double> ours_us, nginx_us;
  for (int r = 0; r < rounds; ++r) {
    warm.emplace_back();
    ours_us.push_back(cpu_us(
        serve.pid(),
        [&] {
          return Wrk(fmt::format("http://127.0.0.1:{}", ours), dir.path() / "ours.lua", seconds,
                     dir.path(), fmt::format("ours-{}", r));
        },
        &warm.back()));
    statics.emplace_back();
    nginx_us.push_back(cpu_us(
        nginx.pid(),
        [&] {
          return Wrk(fmt::format("http://127.0.0.1:{}", static_port), dir.path() / "static.lua",
                     seconds, dir.path(), fmt::format("static-{}", r));
        },
        &statics.back()));
    ratios.push_back(warm.back().rps / statics.back().rps);
    cpu_ratios.push_back(nginx_us.back() / ours_us.back());
  }
  auto after_warm = near_counts();
  auto f = Wrk(fmt::format("http://127.0.0.1:{}", theirs), dir.path() / "original.lua", seconds,
               dir.path(), "original");
  auto row = [](const std::string& what, const WrkResult& r) {
    fmt::print("  {:<54} {:>9.0f} req/s  p50 {:>7.3f} ms  p99 {:>7.3f} ms{}\n", what, r.rps,
               r.p50_ms, r.p99_ms, r.errors.empty() ? "" : "  non-2xx " + r.errors);
  };
  row("pdv serve  GET /v1/clientes/{cpf} (cold near-cache)", cold);
  for (int r = 0; r < rounds; ++r) {
    row(fmt::format("pdv serve  GET /v1/clientes/{{cpf}} (warm, round {})", r + 1), warm[r]);
    row(fmt::format("nginx, static JSON of the same size (round {})", r + 1), statics[r]);
  }
  row("original (FastAPI+uvicorn+redis-py) /status", f);
  auto median_of = [](std::vector<double> v) { return Percentile(v, 0.5); };
  std::vector<double> warm_rps;
  for (const auto& w : warm) warm_rps.push_back(w.rps);
  double o_rps = median_of(warm_rps);
  std::string each;
  for (double x : ratios) each += fmt::format(" {:.2f}", x);
  fmt::print(
      "  pdv / nginx static: median {:.2f}x warm (rounds:{}), {:.2f}x cold against round 1 "
      "(target >= 1.0x)   pdv / original: {:.1f}x warm, {:.1f}x cold\n",
      median_of(ratios), each, cold.rps / statics[0].rps, o_rps / f.rps, cold.rps / f.rps);
  std::string each_cpu;
  for (int r = 0; r < rounds; ++r) {
    each_cpu += fmt::format(" {:.1f}/{:.1f}", ours_us[static_cast<size_t>(r)],
                            nginx_us[static_cast<size_t>(r)]);
  }
  fmt::print(
      "  server CPU per answer (user+system, µs, ours/nginx by round:{}): nginx / pdv median "
      "{:.2f}x (above 1: ours costs less)\n",
      each_cpu, median_of(cpu_ratios));
  fmt::print("  near-cache answered in process: {:.0f}% cold, {:.0f}% warm\n",
             near_share(before_cold, after_cold), near_share(after_cold, after_warm));

  std::vector<std::string> requests;
  for (size_t i = 0; i < 20000; ++i) {
    requests.push_back(
        fmt::format("GET /v1/clientes/{} HTTP/1.1\r\nHost: b\r\nX-API-Key: {}\r\n\r\n",
                    cpfs[(i * 7919) % cpfs.size()], key));
  }
  double half = o_rps / 2;
  auto lat = FixedRate(ours, requests, half, 32, seconds);
  fmt::print(
      "  pdv serve at half its maximum ({:.0f} req/s, fixed schedule, 32 connections): p50 {:.3f} "
      "ms, p99 {:.3f} ms (target p99 < 1 ms)\n",
      half, Percentile(lat, 0.5), Percentile(lat, 0.99));
  fmt::print("  Redis memory per customer: pdv {:.1f} B (target < 100), original layout {:.1f} B\n",
             synced.bytes_per_customer, original_per_customer);
  (void)sample;

  if (terminals > 0) {
    // The registers of a large chain: each holds its connection open all day.
    double rss_before = RssBytes(serve.pid()), kernel_before = KernelTcpBytes();
    pdv::bench::Terminals open(ours, terminals);
    auto accepted = Clock::now() + 60s;
    while (Metric(Metrics(ours), "pdv_api_connections") < terminals && Clock::now() < accepted)
      std::this_thread::sleep_for(100ms);
    double rss_open = RssBytes(serve.pid()), kernel_open = KernelTcpBytes();
    auto run = open.Run(requests, terminal_rate, seconds);
    double rss_after = RssBytes(serve.pid());
    fmt::print(
        "  {} keep-alive connections, {:.0f} req/s on a fixed schedule for {} s: p50 {:.3f} ms, "
        "p99 {:.3f} ms, p99.9 {:.3f} ms (target p99 < 5 ms); {} sent, {} answered, {} not 200, "
        "{} unanswered, {} closed by the server\n",
        open.size(), terminal_rate, seconds, Percentile(run.latencies_ms, 0.5),
        Percentile(run.latencies_ms, 0.99), Percentile(run.latencies_ms, 0.999), run.sent,
        run.latencies_ms.size(), run.not_ok, run.unanswered, run.closed);
    fmt::print(
        "  memory per connection: pdv serve {:.1f} KiB resident when opened, {:.1f} KiB after "
        "the run (RSS {:.0f} -> {:.0f} -> {:.0f} MB); the kernel's TCP buffers {:.1f} KiB for "
        "both ends\n",
        (rss_open - rss_before) / terminals / 1024, (rss_after - rss_before) / terminals / 1024,
        rss_before / 1e6, rss_open / 1e6, rss_after / 1e6,
        (kernel_open - kernel_before) / terminals / 1024);
  }
  if (terminals > 0) {
    // The same many connections against nginx, in turn with ours: the fixed schedule's
    // latencies (each server gets the same requests), then wrk holding that many
    // connections busy (closed loop: each server's maximum with them open).
    fmt::print(
        "  {} keep-alive connections, pdv serve and nginx in turn, {} rounds: fixed schedule "
        "{:.0f} req/s, then wrk -c{}\n",
        terminals, rounds, terminal_rate, terminals);
    std::vector<double> p99_ours, p99_nginx, rps_ratios;
    for (int r = 0; r < rounds; ++r) {
      for (int side = 0; side < 2; ++side) {
        int port = side == 0 ? ours : static_port;
        TerminalRun run;
        {
          pdv::bench::Terminals open(port, terminals);
          run = open.Run(requests, terminal_rate, seconds);
        }
        (side == 0 ? p99_ours : p99_nginx).push_back(Percentile(run.latencies_ms, 0.99));
        fmt::print(
            "    round {} {:<6} fixed schedule: p50 {:.3f} ms, p99 {:.3f} ms, p99.9 {:.3f} ms, {} "
            "sent, {} answered, {} not 200\n",
            r + 1, side == 0 ? "pdv" : "nginx", Percentile(run.latencies_ms, 0.5),
            Percentile(run.latencies_ms, 0.99), Percentile(run.latencies_ms, 0.999), run.sent,
            run.latencies_ms.size(), run.not_ok);
      }
      WrkResult a = Wrk(fmt::format("http://127.0.0.1:{}", ours), dir.path() / "ours.lua", seconds,
                        dir.path(), fmt::format("ours-c{}-{}", terminals, r), terminals);
      WrkResult b = Wrk(fmt::format("http://127.0.0.1:{}", static_port), dir.path() / "static.lua",
                        seconds, dir.path(), fmt::format("static-c{}-{}", terminals, r), terminals);
      rps_ratios.push_back(b.rps > 0 ? a.rps / b.rps : 0);
      fmt::print(
          "    round {} wrk -c{}: pdv {:.0f} req/s (p99 {:.2f} ms{}), nginx {:.0f} req/s (p99 "
          "{:.2f} ms{}), ratio {:.2f}\n",
          r + 1, terminals, a.rps, a.p99_ms, a.errors.empty() ? "" : ", non-2xx " + a.errors, b.rps,
          b.p99_ms, b.errors.empty() ? "" : ", non-2xx " + b.errors, rps_ratios.back());
    }
    fmt::print(
        "  {} connections: pdv / nginx median {:.2f}x under wrk (target >= 1.1x); fixed-schedule "
        "p99 median pdv {:.3f} ms, nginx {:.3f} ms\n",
        terminals, Percentile(rps_ratios, 0.5), Percentile(p99_ours, 0.5),
        Percentile(p99_nginx, 0.5));
  }
  return 0;
}
