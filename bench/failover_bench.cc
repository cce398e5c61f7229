// bench/failover: the OLTP failover path at scale. N customers (default 1,000,000) on a
// primary with a streaming standby; `pdv cdc --auto-resync` through a two-host URL until
// RAW has them; the primary stopped, the standby promoted; then the time until cdc
// streams from the new primary (a new slot, a snapshot reconciled with RAW), and what the
// resync appended.
//
// With --patroni: the same customers on a Patroni cluster with a permanent slot instead
// (bench/failover_patroni.h): no resync, the primary SIGKILLed under load.
//
// usage: failover_bench PDV_BINARY [--customers N] [--patroni]

#include <fmt/format.h>
#include <signal.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "bench/bench_support.h"
#include "bench/failover_patroni.h"
#include "localsvc/child_process.h"
#include "localsvc/local_postgres.h"
#include "localsvc/scratch_dir.h"
#include "pg/connection.h"

namespace {

using pdv::bench::Die;
using pdv::bench::Must;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string Scalar(pdv::pg::Connection& conn, const std::string& sql) {
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

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) Die("usage: failover_bench PDV_BINARY [--customers N]");
  std::string pdv = argv[1];
  int customers = 1'000'000;
  bool patroni = false;
  for (int i = 2; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--customers") && i + 1 < argc) {
      customers = std::stoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--patroni")) {
      patroni = true;
    } else {
      Die(fmt::format("failover_bench: unknown argument {}", argv[i]));
    }
  }
  if (patroni) {
    ::setenv("PDV_CPF_KEY", "bench-failover-cpf-key-0123", 1);
    pdv::bench::RunPatroniFailover(pdv, customers);
    return 0;
  }
  ::setenv("PDV_CPF_KEY", "bench-failover-cpf-key-0123", 1);
  const std::string password = "bench-failover-password-01";
  auto dir = Must(pdv::localsvc::ScratchDir::Create("pdv-bench-failover"), "scratch dir");
  auto primary = Must(pdv::localsvc::LocalPostgres::Start({.password = password}), "primary");
  Must(primary->EnsureDatabase("source_db"), "database");
  Must(pdv::localsvc::RunCommand(
           {.argv = {pdv, "--log-level", "warn", "generate", "--oltp-url",
                     primary->Url("source_db"), "--initial", std::to_string(customers)},
            .log_file = (dir.path() / "generate.log").string()},
           3600s),
       "generate");
  auto standby = Must(
      pdv::localsvc::LocalPostgres::Start({.password = password, .standby_of = primary->port()}),
      "standby");
  auto wh = Must(pdv::localsvc::LocalPostgres::Start({}), "warehouse");
  Must(wh->EnsureDatabase("warehouse"), "database");
  std::string oltp_url = fmt::format(
      "postgresql://postgres:{}@127.0.0.1:{},127.0.0.1:{}/"
      "source_db?target_session_attrs=read-write",
      password, primary->port(), standby->port());
  fs::path log = dir.path() / "cdc.log";
  auto cdc = Must(pdv::localsvc::ChildProcess::Spawn(
                      {.argv = {pdv, "cdc", "--oltp-url", oltp_url, "--warehouse-url",
                                wh->Url("warehouse"), "--auto-resync", "--metrics-listen", ""},
                       .log_file = log.string(),
                       .parent_death_signal = SIGKILL}),
                  "pdv cdc");
  auto p = Must(pdv::pg::Connection::Connect(primary->Url("source_db")), "primary");
  auto s = Must(pdv::pg::Connection::Connect(standby->Url("source_db")), "standby");
  auto w = Must(pdv::pg::Connection::Connect(wh->Url("warehouse")), "warehouse");
  std::string end = Scalar(p, "SELECT pg_current_wal_lsn()");
  WaitUntil(
      3600s,
      [&] {
        auto r = w.Exec("SELECT coalesce(max(flush_lsn) >= '" + end +
                        "'::pg_lsn, false) FROM raw._cdc_checkpoint");
        return r.ok() && r->rows() && std::string(r->str(0, 0)) == "t" &&
               Scalar(s, "SELECT pg_last_wal_replay_lsn() >= '" + end + "'::pg_lsn") == "t";
      },
      "RAW and the standby to catch up");
  Must(primary->Stop(), "stop the primary");
  auto promoted = Clock::now();
  if (Scalar(s, "SELECT pg_promote(true, 60)") != "t") Die("the standby was not promoted");
  std::smatch done;
  WaitUntil(
      3600s,
      [&] {
        std::string out = pdv::bench::ReadFile(log);
        auto resync = out.find("event=cdc_auto_resync");
        if (resync == std::string::npos) return false;
        std::string after = out.substr(resync);
        return after.find("event=cdc_streaming") != std::string::npos &&
               std::regex_search(after, done, std::regex(R"(event=cdc_snapshot_done [^\n]*)"));
      },
      "cdc to stream from the new primary");
  double seconds = std::chrono::duration<double>(Clock::now() - promoted).count();
  fmt::print("bench/failover: {} customers; primary stopped, standby promoted\n", customers);
  fmt::print("  promotion -> cdc streaming from the new primary: {:.1f} s\n", seconds);
  fmt::print("  resync: {}\n", done.str());
  cdc.Signal(SIGTERM);
  cdc.Wait(30s);
  return 0;
}
