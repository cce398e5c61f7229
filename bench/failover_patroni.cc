#include "bench/failover_patroni.h"

#include <fmt/format.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "bench/bench_support.h"
#include "localsvc/child_process.h"
#include "localsvc/local_etcd.h"
#include "localsvc/local_patroni.h"
#include "localsvc/local_postgres.h"
#include "localsvc/scratch_dir.h"
#include "pg/connection.h"

namespace pdv::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string Scalar(pg::Connection& conn, const std::string& sql) {
  auto r = Must(conn.Exec(sql), "query");
  return r.rows() ? std::string(r.str(0, 0)) : "";
}

void WaitUntil(std::chrono::seconds timeout, const std::function<bool()>& cond, const char* what) {
  auto end = Clock::now() + timeout;
  while (!cond()) {
    if (Clock::now() > end) Die(fmt::format("timed out waiting for {}", what));
    std::this_thread::sleep_for(20ms);
  }
}

// Updates of random customers at about 1,000 a second through the multi-host URL, each
// setting telefone to its own tag; the acknowledged ones are remembered with the port of
// the primary that acknowledged them.
class Workload {
 public:
  Workload(std::string url, std::vector<std::string> keys)
      : url_(std::move(url)), keys_(std::move(keys)) {
    thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
  }
  void Stop() {
    thread_.request_stop();
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::pair<std::string, int>> Acknowledged() {
    std::lock_guard lock(mu_);
    return acknowledged_;
  }

 private:
  void Run(std::stop_token stop) {
    std::mt19937 rng(34);
    std::optional<pg::Connection> conn;
    int port = 0;
    auto next = Clock::now();
    for (int64_t n = 0; !stop.stop_requested();) {
      if (!conn) {
        auto c = pg::Connection::Connect(url_ + "&connect_timeout=2");
        if (!c.ok()) {
          std::this_thread::sleep_for(50ms);
          continue;
        }
        conn.emplace(std::move(*c));
        auto p = conn->Exec("SELECT inet_server_port()");
        port = p.ok() ? std::stoi(p->str(0, 0)) : 0;
      }
      std::string tag = fmt::format("b{}", n++);
      auto r = conn->Exec(
          fmt::format("UPDATE clientes_clube SET telefone = '{}', ultima_atualizacao = now() WHERE "
                      "cliente_id = '{}'",
                      tag, keys_[rng() % keys_.size()]));
      if (r.ok()) {
        std::lock_guard lock(mu_);
        acknowledged_.emplace_back(tag, port);
      } else {
        conn.reset();
      }
      next += 1ms;
      auto now = Clock::now();
      if (now > next + 1s) next = now;
      std::this_thread::sleep_until(next);
    }
  }

  std::string url_;
  std::vector<std::string> keys_;
  std::mutex mu_;
  std::vector<std::pair<std::string, int>> acknowledged_;
  std::jthread thread_;
};

}  // namespace

void RunPatroniFailover(const std::string& pdv, int customers) {
  auto dir = Must(localsvc::ScratchDir::Create("pdv-bench-patroni"), "scratch dir");
  auto etcd = Must(localsvc::LocalEtcd::Start(), "etcd");
  auto cluster =
      Must(localsvc::LocalPatroniCluster::Start({.etcd_endpoint = etcd->Endpoint()}), "Patroni");
  {
    auto primary = Must(pg::Connection::Connect(cluster->MultiHostUrl("postgres")), "primary");
    Must(primary.Exec("CREATE DATABASE source_db"), "database");
  }
  const std::string oltp_url = cluster->MultiHostUrl("source_db");
  Must(localsvc::RunCommand({.argv = {pdv, "--log-level", "warn", "generate", "--oltp-url",
                                      oltp_url, "--initial", std::to_string(customers)},
                             .log_file = (dir.path() / "generate.log").string()},
                            3600s),
       "generate");
  Must(cluster->SetPermanentSlot("pdv_slot", "source_db"), "permanent slot");
  auto wh = Must(localsvc::LocalPostgres::Start({}), "warehouse");
  Must(wh->EnsureDatabase("warehouse"), "database");
  std::filesystem::path log = dir.path() / "cdc.log";
  auto cdc = Must(
      localsvc::ChildProcess::Spawn({.argv = {pdv, "cdc", "--oltp-url", oltp_url, "--warehouse-url",
                                              wh->Url("warehouse"), "--metrics-listen", ""},
                                     .log_file = log.string(),
                                     .parent_death_signal = SIGKILL}),
      "pdv cdc");
  auto w = Must(pg::Connection::Connect(wh->Url("warehouse")), "warehouse");
  std::vector<std::string> keys;
  {
    auto source = Must(pg::Connection::Connect(oltp_url), "source");
    std::string end = Scalar(source, "SELECT pg_current_wal_lsn()");
    WaitUntil(
        3600s,
        [&] {
          auto r = w.Exec("SELECT coalesce(max(flush_lsn) >= '" + end +
                          "'::pg_lsn, false) FROM raw._cdc_checkpoint");
          return r.ok() && r->rows() && r->str(0, 0) == "t";
        },
        "RAW to catch up");
    Must(cluster->WaitForSlotOnReplicas("pdv_slot", 600s), "the slot's copies");
    fmt::print("  RAW caught up before the kill: {} rows, source has {} customers\n",
               Scalar(w, "SELECT count(*) FROM raw.clientes_clube"),
               Scalar(source, "SELECT count(*) FROM clientes_clube"));
    auto r = Must(source.Exec("SELECT cliente_id::text FROM clientes_clube LIMIT 100000"), "keys");
    for (int i = 0; i < r.rows(); ++i) keys.push_back(r.str(i, 0));
  }
  Workload workload(oltp_url, keys);
  int old_leader = Must(cluster->WaitForLeader(10s), "leader");
  WaitUntil(
      60s, [&] { return workload.Acknowledged().size() >= 3000; }, "the workload");
  auto killed = Clock::now();
  cluster->KillNode(old_leader);
  int leader = Must(cluster->WaitForLeader(300s, old_leader), "new leader");
  double promoted_s = std::chrono::duration<double>(Clock::now() - killed).count();
  int new_port = cluster->pg_port(leader);
  std::string first;
  WaitUntil(
      60s,
      [&] {
        for (const auto& [tag, port] : workload.Acknowledged()) {
          if (port == new_port) {
            first = tag;
            return true;
          }
        }
        return false;
      },
      "a change on the new primary");
  WaitUntil(
      600s,
      [&] {
        return Scalar(w, "SELECT count(*) FROM raw.clientes_clube WHERE telefone = '" + first +
                             "'") != "0";
      },
      "the new primary's first change in RAW");
  double to_raw_s = std::chrono::duration<double>(Clock::now() - killed).count();
  WaitUntil(
      120s,
      [&] {
        size_t n = 0;
        for (const auto& a : workload.Acknowledged()) n += a.second == new_port;
        return n >= 3000;
      },
      "the workload on the new primary");
  workload.Stop();
  auto source = Must(pg::Connection::Connect(cluster->NodeUrl(leader, "source_db")), "source");
  std::string end = Scalar(source, "SELECT pg_current_wal_lsn()");
  WaitUntil(
      600s,
      [&] {
        return Scalar(w, "SELECT coalesce(max(flush_lsn) >= '" + end +
                             "'::pg_lsn, false) FROM raw._cdc_checkpoint") == "t";
      },
      "RAW to catch up with the new primary");
  std::map<std::string, int64_t> in_raw;
  auto rows = Must(w.Exec("SELECT telefone, count(*) FROM raw.clientes_clube WHERE telefone "
                          "LIKE 'b%' AND _cdc_op = 'u' GROUP BY 1"),
                   "RAW");
  for (int i = 0; i < rows.rows(); ++i) in_raw[rows.str(i, 0)] = std::stoll(rows.str(i, 1));
  int64_t on_new = 0, lost = 0, doubled = 0, on_old = 0, old_doubled = 0;
  for (const auto& [tag, port] : workload.Acknowledged()) {
    auto it = in_raw.find(tag);
    int64_t n = it == in_raw.end() ? 0 : it->second;
    if (port == new_port) {
      ++on_new;
      lost += n == 0;
      doubled += n > 1;
    } else {
      ++on_old;
      old_doubled += n > 1;
    }
  }
  fmt::print(
      "bench/failover (Patroni, permanent slot, no resync): {} customers, 3 nodes, "
      "ttl 10 s; primary SIGKILLed under ~1,000 updates/s\n",
      customers);
  fmt::print("  kill -> new primary read-write: {:.1f} s\n", promoted_s);
  fmt::print("  kill -> its first change in RAW: {:.1f} s\n", to_raw_s);
  fmt::print(
      "  new primary's acknowledged changes: {} (lost {}, doubled {}); old primary's: {} "
      "(doubled {})\n",
      on_new, lost, doubled, on_old, old_doubled);
  fmt::print("  kill -> POS answer: not measured here (no transform/cache/serve in this bench)\n");
  cdc.Signal(SIGTERM);
  cdc.Wait(30s);
}

}  // namespace pdv::bench
