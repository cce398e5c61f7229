// bench/cache: how long lookups of known customers go unanswered after Redis loses its
// data (FLUSHALL: a restart without persistence, a failover to an empty replica), with
// `cache watch` and `pdv serve` running and no new change arriving, at 100k customers
// (--customers N, --rounds R). Counts wrong answers (404 or 401 for a known customer
// and key): the target is 0, and answered again within 10 s.

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
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

}  // namespace

int main(int argc, char** argv) {
  int customers = 100'000, rounds = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--customers"))
      customers = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--rounds"))
      rounds = std::stoi(argv[i + 1]);
    else
      Die(fmt::format("unknown option {} (--customers N --rounds R)", argv[i]));
  }
  auto pg = Must(pdv::localsvc::LocalPostgres::Start({}), "postgres");
  auto redis_server = Must(pdv::localsvc::LocalRedis::Start({}), "redis");
  auto conn = Must(pdv::pg::Connection::Connect(pg->Url()), "connect");
  std::vector<std::string> cpfs = pdv::bench::FillDimension(conn, customers, kKey).cpfs;
  std::string key = Must(pdv::api::CreateApiKey(redis_server->Url(), pg->Url(), "bench"), "key");

  pdv::Logger log(stderr, "bench", pdv::LogFormat::kKeyValue, pdv::LogLevel::kWarn);
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
