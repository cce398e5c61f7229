// bench/cache: first the full load against `redis-cli --pipe` loading the same records
// in the same layout (the buckets our load wrote, dumped as one HSET each into a RESP
// file), on an emptied Redis each time, alternated ours/redis-cli for R rounds, medians
// and their ratio (--load-only stops there). Then how long lookups of known customers go
// unanswered after Redis loses its data (FLUSHALL: a restart without persistence, a
// failover to an empty replica), with `cache watch` and `pdv serve` running and no new
// change arriving, at 100k customers (--customers N, --rounds R). Counts wrong answers
// (404 or 401 for a known customer and key): the target is 0, and answered again within
// 10 s.

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <stop_token>
#include <thread>
#include <vector>

#include "api/apikeys.h"
#include "api/serve.h"
#include "bench/bench_support.h"
#include "bench/dimension_fixture.h"
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
using pdv::bench::Must;
using pdv::bench::Percentile;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
constexpr char kKey[] = "bench-cache-cpf-key-0123";

// The status code of GET path on 127.0.0.1:port (a connection per request), 0 if none.
int HttpStatus(int port, const std::string& path, const std::string& api_key) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int status = 0;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    std::string req = fmt::format(
        "GET {} HTTP/1.1\r\nHost: x\r\nX-API-Key: {}\r\nConnection: close\r\n\r\n", path, api_key);
    (void)::send(fd, req.data(), req.size(), 0);
    char buf[64] = {};
    ssize_t n = ::recv(fd, buf, sizeof buf - 1, MSG_WAITALL);
    if (n > 12 && std::strncmp(buf, "HTTP/1.1 ", 9) == 0) status = std::atoi(buf + 9);
  }
  ::close(fd);
  return status;
}

// CPU seconds (user + system) of process `pid` so far, with its reaped children's when
// `children` (a postmaster's: the backends that ended), 0 if it cannot be read.
double CpuSeconds(int pid, bool children = false) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string text((std::istreambuf_iterator<char>(in)), {});
  auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; rest >> field && i <= 17; ++i) {
    if (i == 14 || i == 15 || (children && (i == 16 || i == 17))) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// CPU seconds of this process (`who` RUSAGE_SELF) or of its ended children.
double OwnCpuSeconds(int who) {
  rusage u{};
  ::getrusage(who, &u);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

// The postmaster's pid (the first line of postmaster.pid under the server's directory).
int PostmasterPid(const std::filesystem::path& dir) {
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.path().filename() == "postmaster.pid") return std::atoi(pdv::bench::ReadFile(e).c_str());
  }
  return 0;
}

// The redis-server's pid, from INFO server.
int RedisPid(pdv::redis::Client& redis) {
  auto info = Must(redis.Command({"INFO", "server"}), "INFO");
  std::string text(info.str());
  auto at = text.find("process_id:");
  return at == std::string::npos ? 0 : std::atoi(text.c_str() + at + 11);
}

void AppendResp(std::string& out, const std::vector<std::string_view>& args) {
  out += fmt::format("*{}\r\n", args.size());
  for (auto a : args) {
    out += fmt::format("${}\r\n", a.size());
    out += a;
    out += "\r\n";
  }
}

// Every bucket of the version pdv:meta names, as one HSET of all its fields each, in RESP
// (what `redis-cli --pipe` reads), into `file`. Returns the number of fields.
size_t DumpLoadedVersion(pdv::redis::Client& redis, const std::filesystem::path& file) {
  auto meta = Must(pdv::cache::ReadMeta(redis), "pdv:meta");
  if (!meta.exists) Die("no loaded version to dump");
  std::ofstream out(file, std::ios::binary);
  std::string text;
  size_t fields = 0;
  for (const auto& key : meta.layout.BucketKeys(0, meta.layout.buckets())) {
    auto all = Must(redis.Command({"HGETALL", key}), "HGETALL");
    if (all.elements() == 0) continue;
    std::vector<std::string_view> args = {"HSET", key};
    for (size_t i = 0; i < all.elements(); ++i)
      args.emplace_back(all.element(i)->str, all.element(i)->len);
    fields += all.elements() / 2;
    AppendResp(text, args);
    if (text.size() > (4 << 20)) {
      out << text;
      text.clear();
    }
  }
  out << text;
  return fields;
}

struct LoadRound {
  double seconds = 0;
  double redis_cpu_s = 0;   // redis-server's CPU over the load
  double client_cpu_s = 0;  // the loader's: our process, or redis-cli
  double pg_cpu_s = 0;      // the warehouse's (0 for redis-cli)
};

// Our full load against redis-cli --pipe, alternated, each on an emptied Redis.
void CompareFullLoad(pdv::localsvc::LocalPostgres& pg, pdv::localsvc::LocalRedis& server,
                     int customers, int rounds, pdv::Logger& log) {
  const std::string pg_url = pg.Url();
  auto redis = Must(pdv::redis::Client::Connect(server.Url()), "redis");
  const int redis_pid = RedisPid(redis), postmaster = PostmasterPid(pg.dir());
  auto dir = Must(pdv::localsvc::ScratchDir::Create("pdv-bench-cache"), "scratch dir");
  pdv::cache::CacheOptions options{.warehouse_url = pg_url, .redis_url = server.Url()};
  auto ours = [&] {
    Must(redis.Command({"FLUSHALL"}).status(), "FLUSHALL");
    double cpu = CpuSeconds(redis_pid), own = OwnCpuSeconds(RUSAGE_SELF),
           pg_cpu = CpuSeconds(postmaster, true);
    auto t = Clock::now();
    Must(pdv::cache::SyncFull(options, log, {}).status(), "full load");
    double seconds = std::chrono::duration<double>(Clock::now() - t).count();
    std::this_thread::sleep_for(200ms);  // the backend ends and is reaped
    return LoadRound{seconds, CpuSeconds(redis_pid) - cpu, OwnCpuSeconds(RUSAGE_SELF) - own,
                     CpuSeconds(postmaster, true) - pg_cpu};
  };
  (void)ours();  // warm-up (the warehouse's pages in memory), and what the dump copies
  auto resp = dir.path() / "load.resp";
  size_t fields = DumpLoadedVersion(redis, resp);
  const std::string redis_cli_log = (dir.path() / "redis-cli.log").string();
  auto reference = [&] {
    Must(redis.Command({"FLUSHALL"}).status(), "FLUSHALL");
    double cpu = CpuSeconds(redis_pid), cli = OwnCpuSeconds(RUSAGE_CHILDREN);
    auto t = Clock::now();
    Must(pdv::localsvc::RunCommand(
             {.argv = {"redis-cli", "-h", "127.0.0.1", "-p", std::to_string(server.port()),
                       "--pipe"},
              .log_file = redis_cli_log,
              .stdin_file = resp.string(),
              .env = std::vector<std::string>{"REDISCLI_AUTH=" + server.password(),
                                              "PATH=/usr/bin:/bin"}},
             std::chrono::seconds(3600)),
         "redis-cli --pipe");
    return LoadRound{std::chrono::duration<double>(Clock::now() - t).count(),
                     CpuSeconds(redis_pid) - cpu, OwnCpuSeconds(RUSAGE_CHILDREN) - cli, 0};
  };
  fmt::print(
      "bench/cache: full load of {} customers ({} fields, {:.1f} MB of RESP) against "
      "redis-cli --pipe of the same buckets, alternated, {} rounds, Redis emptied before each\n",
      customers, fields, static_cast<double>(std::filesystem::file_size(resp)) / 1e6, rounds);
  std::vector<double> ours_rate, ref_rate, ratios, cpu_ratios;
  std::vector<LoadRound> ours_rounds, ref_rounds;
  for (int r = 0; r < rounds; ++r) {
    LoadRound a = ours(), b = reference();
    ours_rounds.push_back(a);
    ref_rounds.push_back(b);
    ours_rate.push_back(customers / a.seconds);
    ref_rate.push_back(customers / b.seconds);
    ratios.push_back(ours_rate.back() / ref_rate.back());
    double a_cpu = a.redis_cpu_s + a.client_cpu_s + a.pg_cpu_s,
           b_cpu = b.redis_cpu_s + b.client_cpu_s;
    cpu_ratios.push_back(b_cpu / a_cpu);
    fmt::print(
        "  round {}: pdv {:.2f} s ({:.0f} customers/s; CPU s: Redis {:.2f}, pdv {:.2f}, "
        "PostgreSQL {:.2f}), redis-cli --pipe {:.2f} s ({:.0f}/s; CPU s: Redis {:.2f}, "
        "redis-cli {:.2f}), ratio {:.2f}\n",
        r + 1, a.seconds, ours_rate.back(), a.redis_cpu_s, a.client_cpu_s, a.pg_cpu_s, b.seconds,
        ref_rate.back(), b.redis_cpu_s, b.client_cpu_s, ratios.back());
  }
  auto median = [](const std::vector<LoadRound>& v, double LoadRound::*field) {
    std::vector<double> x;
    for (const auto& r : v) x.push_back(r.*field);
    return Percentile(x, 0.5);
  };
  fmt::print(
      "  full load: median pdv {:.0f} customers/s, redis-cli --pipe {:.0f}/s, ratio median "
      "{:.2f} (target >= 0.8)\n"
      "  CPU medians, s: pdv's load Redis {:.2f} + pdv {:.2f} + PostgreSQL {:.2f}; redis-cli's "
      "Redis {:.2f} + redis-cli {:.2f}; CPU ratio (redis-cli's / ours) median {:.2f}\n",
      Percentile(ours_rate, 0.5), Percentile(ref_rate, 0.5), Percentile(ratios, 0.5),
      median(ours_rounds, &LoadRound::redis_cpu_s), median(ours_rounds, &LoadRound::client_cpu_s),
      median(ours_rounds, &LoadRound::pg_cpu_s), median(ref_rounds, &LoadRound::redis_cpu_s),
      median(ref_rounds, &LoadRound::client_cpu_s), Percentile(cpu_ratios, 0.5));
  Must(redis.Command({"FLUSHALL"}).status(), "FLUSHALL");
}

}  // namespace

int main(int argc, char** argv) {
  int customers = 100'000, rounds = 5;
  bool load_only = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--load-only")) {
      load_only = true;
      continue;
    }
    if (i + 1 >= argc) Die(fmt::format("{} needs a value", argv[i]));
    if (!std::strcmp(argv[i], "--customers"))
      customers = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--rounds"))
      rounds = std::stoi(argv[i + 1]);
    else
      Die(fmt::format("unknown option {} (--customers N --rounds R --load-only)", argv[i]));
    ++i;
  }
  auto pg = Must(pdv::localsvc::LocalPostgres::Start({}), "postgres");
  auto redis_server = Must(pdv::localsvc::LocalRedis::Start({}), "redis");
  auto conn = Must(pdv::pg::Connection::Connect(pg->Url()), "connect");
  std::vector<std::string> cpfs = pdv::bench::FillDimension(conn, customers, kKey).cpfs;
  pdv::Logger log(stderr, "bench", pdv::LogFormat::kKeyValue, pdv::LogLevel::kWarn);
  CompareFullLoad(*pg, *redis_server, customers, rounds, log);
  if (load_only) return 0;
  std::string key = Must(pdv::api::CreateApiKey(redis_server->Url(), pg->Url(), "bench"), "key");

  pdv::cache::CacheOptions cache{.warehouse_url = pg->Url(), .redis_url = redis_server->Url()};
  cache.restore_api_keys = [&](pdv::redis::Client& redis) {
    return pdv::api::RestoreApiKeys(redis, pg->Url());
  };
  int port = Must(pdv::localsvc::FreeLoopbackPort(), "port");
  pdv::api::ServeOptions serve{.listen = fmt::format("127.0.0.1:{}", port),
                               .redis_url = redis_server->Url(),
                               .cpf_key = kKey,
                               .rate_per_key = 0};
  std::stop_source stop;
  std::jthread watch([&] { (void)pdv::cache::Watch(cache, log, stop.get_token()); });
  std::jthread api([&] { (void)pdv::api::Serve(serve, log, stop.get_token()); });

  std::string path = "/v1/clientes/" + cpfs[cpfs.size() / 2];
  auto deadline = Clock::now() + 120s;
  while (HttpStatus(port, path, key) != 200) {
    if (Clock::now() > deadline) Die("no answer after the first load");
    std::this_thread::sleep_for(20ms);
  }
  fmt::print("bench/cache: {} customers, cache watch + pdv serve in process, {} rounds\n",
             customers, rounds);
  auto redis = Must(pdv::redis::Client::Connect(redis_server->Url()), "redis");
  std::vector<double> gaps;
  std::map<int, int> answers;
  for (int r = 0; r < rounds; ++r) {
    auto lost = Clock::now();
    Must(redis.Command({"FLUSHALL"}).status(), "FLUSHALL");
    // A lookup racing the loss may still be answered from the API's near-cache (the
    // state it holds is still true): the gap ends at the first 200 after a 503, or is 0
    // when a whole second passes without one.
    int status = 0;
    bool unavailable = false;
    while ((status = HttpStatus(port, path, key)) != 200 || !unavailable) {
      answers[status]++;
      if (status == 503) unavailable = true;
      if (status == 200 && Clock::now() - lost > 1s) break;
      if (Clock::now() - lost > 60s) Die("not answered again within 60 s");
    }
    answers[200]++;
    gaps.push_back(unavailable ? std::chrono::duration<double>(Clock::now() - lost).count() : 0);
    fmt::print("  round {}: answered again {:.2f} s after the loss\n", r + 1, gaps.back());
  }
  int wrong = 0;
  std::string seen;
  for (const auto& [status, n] : answers) {
    seen += fmt::format(" {}x{}", status, n);
    if (status != 200 && status != 503) wrong += n;
  }
  fmt::print("  data loss to answered lookups: median {:.2f} s, max {:.2f} s (target < 10 s)\n",
             Percentile(gaps, 0.5), Percentile(gaps, 1.0));
  fmt::print("  answers during the gaps:{}; wrong answers (404/401/other): {} (target 0)\n", seen,
             wrong);
  // Revocation: a key in use, revoked (warehouse, then Redis); time until its 403.
  std::vector<double> revocations;
  for (int r = 0; r < rounds; ++r) {
    std::string name = fmt::format("revoked-{}", r);
    std::string k = Must(pdv::api::CreateApiKey(redis_server->Url(), pg->Url(), name), "key");
    // In use: answered (and so remembered) by every event loop of the API.
    for (int ok = 0; ok < 20;) ok += HttpStatus(port, path, k) == 200;
    auto revoked = Clock::now();
    Must(pdv::api::RevokeApiKey(redis_server->Url(), pg->Url(), name), "revoke");
    while (HttpStatus(port, path, k) != 403) {
      if (Clock::now() - revoked > 30s) Die("a revoked key still works after 30 s");
    }
    revocations.push_back(std::chrono::duration<double>(Clock::now() - revoked).count());
  }
  fmt::print("  revocation to 403: median {:.2f} s, max {:.2f} s (target < 1 s)\n",
             Percentile(revocations, 0.5), Percentile(revocations, 1.0));
  stop.request_stop();
  return wrong == 0 ? 0 : 1;
}
