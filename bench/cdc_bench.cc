// bench/cdc: `pdv cdc` throughput (1,000,000 changes into RAW, beside pg_recvlogical
// draining the same changes to a file: the server's decode ceiling) and commit-to-RAW
// latency under a steady 1,000 changes/s. Fresh local OLTP and warehouse servers.

#include <fcntl.h>
#include <fmt/format.h>
#include <libpq-fe.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <stop_token>
#include <thread>
#include <vector>

#include "bench/bench_support.h"
#include "cdc/cdc.h"
#include "common/log.h"
#include "generate/oltp_schema.h"
#include "localsvc/child_process.h"
#include "localsvc/local_postgres.h"
#include "pg/connection.h"

namespace {

using pdv::bench::Die;
using pdv::bench::Must;
using pdv::bench::Percentile;

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string Scalar(pdv::pg::Connection& c, const std::string& sql) {
  return Must(c.Exec(sql), sql.c_str()).str(0, 0);
}

// Rows shaped like clientes_clube's, made by the server (the writer is not measured).
std::string InsertRows(int n, int64_t offset) {
  return fmt::format(
      "INSERT INTO clientes_clube SELECT gen_random_uuid(), md5('b' || (g + {0})), "
      "'Cliente Bench ' || g, 'bench' || (g + {0}) || '@example.com', '(11) 91234-5678', "
      "'1990-01-01', 'F', 'São Paulo', 'SP', '01310-100', 'app', timezone('UTC', now()), "
      "timezone('UTC', now()), 'ATIVO', true, 123.45, 'verao' FROM generate_series(1, {1}) g",
      offset, n);
}

pdv::cdc::CdcOptions Options(pdv::localsvc::LocalPostgres& oltp, pdv::localsvc::LocalPostgres& wh) {
  return {.oltp_url = oltp.Url("source_db"),
          .warehouse_url = wh.Url("warehouse"),
          .metrics_listen = ""};
}

// Peak RSS and time of `pdv args...` run to completion (the real binary, beside this
// one in the build tree), from wait4's rusage.
struct ChildRun {
  double seconds = 0;
  double peak_rss_mb = 0;
  double cpu_seconds = 0;  // user + system
};
ChildRun RunPdv(const std::vector<std::string>& args) {
  std::filesystem::path pdv =
      std::filesystem::read_symlink("/proc/self/exe").parent_path().parent_path() / "src" / "cli" /
      "pdv";
  std::vector<std::string> argv = {pdv.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> raw;
  for (auto& a : argv) raw.push_back(a.data());
  raw.push_back(nullptr);
  auto start = Clock::now();
  pid_t pid = ::fork();
  if (pid < 0) Die("fork failed");
  if (pid == 0) {
    int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::execv(raw[0], raw.data());
    ::_exit(127);
  }
  int status = 0;
  rusage usage{};
  if (::wait4(pid, &status, 0, &usage) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    Die(fmt::format("{} failed (status {})", pdv.string(), status));
  }
  return {.seconds = std::chrono::duration<double>(Clock::now() - start).count(),
          .peak_rss_mb = usage.ru_maxrss / 1024.0,
          .cpu_seconds = usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 +
                         usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6};
}

// Issue 10 (4): one UPDATE of every row (a million with the defaults) in one transaction:
// `pdv cdc --once` (its own process, for its peak RSS) beside pg_recvlogical draining the
// same transaction.
void BigTransaction(pdv::localsvc::LocalPostgres& oltp, pdv::localsvc::LocalPostgres& wh,
                    pdv::pg::Connection& source, int64_t rows) {
  Must(source.Exec("SELECT pg_create_logical_replication_slot('recvlogical_big', 'pgoutput')")
           .status(),
       "slot for the big transaction");
  auto t0 = Clock::now();
  Must(source.Exec("UPDATE clientes_clube SET ticket_medio_estimado = ticket_medio_estimado + 1")
           .status(),
       "big update");
  std::string end_lsn = Scalar(source, "SELECT pg_current_wal_lsn()");
  fmt::print("  one UPDATE of {} rows at the source in {:.1f} s\n", rows,
             std::chrono::duration<double>(Clock::now() - t0).count());
  // The maintenance the UPDATE made due (a million dead tuples, a checkpoint) runs now,
  // not inside whichever measurement comes first.
  Must(source.Exec("VACUUM clientes_clube").status(), "vacuum source");
  Must(source.Exec("CHECKPOINT").status(), "checkpoint source");
  ChildRun ours =
      RunPdv({"cdc", "--once", "--oltp-url", oltp.Url("source_db"), "--warehouse-url",
              wh.Url("warehouse"), "--metrics-listen", "127.0.0.1:0", "--log-level", "warn"});
  auto warehouse = Must(pdv::pg::Connection::Connect(wh.Url("warehouse")), "connect warehouse");
  int64_t in_raw =
      std::stoll(Scalar(warehouse, "SELECT count(*) FROM raw.clientes_clube WHERE _cdc_op = 'u'"));
  if (in_raw != rows) Die(fmt::format("RAW has {} of {} updates", in_raw, rows));
  std::string out_file = (oltp.dir() / "recvlogical_big.out").string();
  auto recv_start = Clock::now();
  Must(pdv::localsvc::RunCommand(
           {.argv = {"/usr/lib/postgresql/15/bin/pg_recvlogical", "-d", oltp.Url("source_db"),
                     "--slot", "recvlogical_big", "--start", "-o", "proto_version=1", "-o",
                     "publication_names=pdv_pub", "-f", out_file, "-E", end_lsn, "--no-loop"},
            .log_file = (oltp.dir() / "recvlogical_big.log").string()},
           std::chrono::seconds(900)),
       "pg_recvlogical");
  double recv_secs = std::chrono::duration<double>(Clock::now() - recv_start).count();
  std::filesystem::remove(out_file);
  Must(source.Exec("SELECT pg_drop_replication_slot('recvlogical_big')").status(), "drop slot");
  fmt::print(
      "  pdv cdc --once, one {}-row UPDATE: {:>9.0f} changes/s ({:.2f} s, {:.1f} s of CPU), peak "
      "RSS {:.0f} MB (target < 256 MB)\n",
      rows, rows / ours.seconds, ours.seconds, ours.cpu_seconds, ours.peak_rss_mb);
  fmt::print("  pg_recvlogical, the same:          {:>9.0f} changes/s ({:.2f} s)\n",
             rows / recv_secs, recv_secs);
  fmt::print("  ratio                              {:>9.2f}x   (target >= 0.7x)\n",
             recv_secs / ours.seconds);
}

}  // namespace

int main(int argc, char** argv) {
  int64_t changes = 1'000'000;
  int latency_seconds = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--changes"))
      changes = std::stoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--latency-seconds"))
      latency_seconds = std::stoi(argv[i + 1]);
    else
      Die(fmt::format("unknown option {} (--changes N --latency-seconds S)", argv[i]));
  }
  pdv::Logger log(stderr, "cdc", pdv::LogFormat::kKeyValue, pdv::LogLevel::kWarn);
  auto oltp = Must(pdv::localsvc::LocalPostgres::Start({}), "start OLTP");
  auto wh = Must(pdv::localsvc::LocalPostgres::Start({}), "start warehouse");
  Must(oltp->CreateDatabase("source_db"), "create source_db");
  Must(wh->CreateDatabase("warehouse"), "create warehouse");
  auto source = Must(pdv::pg::Connection::Connect(oltp->Url("source_db")), "connect");
  Must(pdv::generate::EnsureOltpSchema(source), "schema");
  fmt::print("bench/cdc: OLTP 127.0.0.1:{}, warehouse 127.0.0.1:{} (fsync off)\n", oltp->port(),
             wh->port());

  // Slots first (ours through a first --once run, then pg_recvlogical's), so both see
  // exactly the changes made next.
  auto options = Options(*oltp, *wh);
  options.once = true;
  Must(pdv::cdc::Run(options, log, {}), "initial cdc run");
  Must(source.Exec("SELECT pg_create_logical_replication_slot('recvlogical', 'pgoutput')").status(),
       "second slot");

  auto t0 = Clock::now();
  for (int64_t done = 0; done < changes; done += 1000) {
    Must(source.Exec(InsertRows(static_cast<int>(std::min<int64_t>(1000, changes - done)), done))
             .status(),
         "insert");
  }
  std::string end_lsn = Scalar(source, "SELECT pg_current_wal_lsn()");
  fmt::print("  wrote {} changes at the source in {:.1f} s (1,000 per transaction)\n", changes,
             std::chrono::duration<double>(Clock::now() - t0).count());

  auto cdc_start = Clock::now();
  Must(pdv::cdc::Run(options, log, {}), "cdc");
  double cdc_secs = std::chrono::duration<double>(Clock::now() - cdc_start).count();
  auto warehouse = Must(pdv::pg::Connection::Connect(wh->Url("warehouse")), "connect warehouse");
  int64_t in_raw =
      std::stoll(Scalar(warehouse, "SELECT count(*) FROM raw.clientes_clube WHERE _cdc_op = 'c'"));
  if (in_raw != changes) Die(fmt::format("RAW has {} of {} changes", in_raw, changes));

  std::string out_file = (oltp->dir() / "recvlogical.out").string();
  auto recv_start = Clock::now();
  Must(pdv::localsvc::RunCommand(
           {.argv = {"/usr/lib/postgresql/15/bin/pg_recvlogical", "-d", oltp->Url("source_db"),
                     "--slot", "recvlogical", "--start", "-o", "proto_version=1", "-o",
                     "publication_names=pdv_pub", "-f", out_file, "-E", end_lsn, "--no-loop"},
            .log_file = (oltp->dir() / "recvlogical.log").string()},
           std::chrono::seconds(600)),
       "pg_recvlogical");
  double recv_secs = std::chrono::duration<double>(Clock::now() - recv_start).count();
  double ours = changes / cdc_secs, theirs = changes / recv_secs;
  fmt::print(
      "  pdv cdc --once into RAW:        {:>9.0f} changes/s ({:.2f} s, decode + COPY into the "
      "warehouse, checkpointed)\n",
      ours, cdc_secs);
  fmt::print("  pg_recvlogical to a file:       {:>9.0f} changes/s ({:.2f} s, decode ceiling)\n",
             theirs, recv_secs);
  fmt::print(
      "  ratio                           {:>9.2f}x   (target >= 0.7x; >= 50,000 changes/s)\n",
      ours / theirs);

  BigTransaction(*oltp, *wh, source, changes);
  // Snapshot: the table now holds the million rows; a new slot copies them into a fresh
  // warehouse database, with writers going on (no lock held on the OLTP table).
  {
    Must(wh->CreateDatabase("warehouse_snapshot"), "create database");
    auto snapshot = Options(*oltp, *wh);
    snapshot.warehouse_url = wh->Url("warehouse_snapshot");
    snapshot.slot = "snapshot_bench";
    snapshot.once = true;
    auto start = Clock::now();
    Must(pdv::cdc::Run(snapshot, log, {}), "snapshot run");
    double secs = std::chrono::duration<double>(Clock::now() - start).count();
    auto conn = Must(pdv::pg::Connection::Connect(snapshot.warehouse_url), "connect");
    int64_t rows =
        std::stoll(Scalar(conn, "SELECT count(*) FROM raw.clientes_clube WHERE _cdc_op = 'r'"));
    fmt::print("  initial snapshot of {} rows:   {:>9.0f} rows/s ({:.2f} s)\n", rows, rows / secs,
               secs);
    Must(source.Exec("SELECT pg_drop_replication_slot('snapshot_bench')").status(), "drop slot");
  }

  // Latency: cdc streaming continuously, 1,000 changes/s in transactions of 10 every 10 ms.
  // First the maintenance the bulk phase left due (autovacuum of two million-row tables,
  // a checkpoint), so that it does not run inside the measurement on this 2-core machine.
  Must(source.Exec("SELECT pg_drop_replication_slot('recvlogical')").status(), "drop slot");
  Must(source.Exec("VACUUM ANALYZE clientes_clube").status(), "vacuum source");
  Must(source.Exec("CHECKPOINT").status(), "checkpoint source");
  Must(warehouse.Exec("VACUUM ANALYZE raw.clientes_clube").status(), "vacuum raw");
  Must(warehouse.Exec("CHECKPOINT").status(), "checkpoint warehouse");
  std::stop_source stop;
  options.once = false;
  std::jthread cdc([&] { Must(pdv::cdc::Run(options, log, stop.get_token()), "cdc"); });
  auto listener = Must(pdv::pg::Connection::Connect(wh->Url("warehouse")), "listen");
  Must(listener.Exec("LISTEN pdv_raw").status(), "listen");
  // Measure from the moment cdc streams live: a restarted walsender first re-reads the
  // WAL of the bulk phase from the slot's restart point.
  Must(source.Exec(InsertRows(1, changes + 10'000'000)).status(), "marker");
  auto warm_deadline = Clock::now() + 120s;
  while (Scalar(warehouse, "SELECT count(*) FROM raw.clientes_clube WHERE _cdc_op = 'c'") !=
         std::to_string(changes + 1)) {
    if (Clock::now() > warm_deadline) Die("cdc did not catch up with the marker row");
    std::this_thread::sleep_for(20ms);
  }
  std::string since = Scalar(warehouse, "SELECT max(_cdc_lsn) FROM raw.clientes_clube");
  std::atomic<bool> writing{true};
  std::jthread writer([&] {
    auto conn = Must(pdv::pg::Connection::Connect(oltp->Url("source_db")), "writer");
    auto next = Clock::now();
    for (int64_t i = 0; writing; ++i) {
      Must(conn.Exec(InsertRows(10, changes + 10 * i)).status(), "latency insert");
      next += 10ms;
      std::this_thread::sleep_until(next);
    }
  });
  std::vector<double> latencies;
  auto end = Clock::now() + std::chrono::seconds(latency_seconds);
  while (Clock::now() < end) {
    pollfd pfd{.fd = PQsocket(listener.raw()), .events = POLLIN, .revents = 0};
    ::poll(&pfd, 1, 200);
    PQconsumeInput(listener.raw());
    bool notified = false;
    while (PGnotify* n = PQnotifies(listener.raw())) {
      notified = true;
      PQfreemem(n);
    }
    if (!notified) continue;
    double now_epoch =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    auto rows =
        Must(warehouse.Exec(fmt::format(
                 "SELECT extract(epoch FROM _cdc_committed_at), _cdc_lsn FROM raw.clientes_clube "
                 "WHERE _cdc_lsn > '{}' ORDER BY _cdc_lsn",
                 since)),
             "latency rows");
    for (int r = 0; r < rows.rows(); ++r) {
      latencies.push_back((now_epoch - std::stod(rows.str(r, 0))) * 1000.0);
      since = rows.str(r, 1);
    }
  }
  writing = false;
  writer.join();
  stop.request_stop();
  cdc.join();
  fmt::print(
      "  commit-to-RAW under 1,000 changes/s for {} s: {} changes, p50 {:.1f} ms, p99 {:.1f} ms, "
      "max {:.1f} ms (target p99 < 100 ms)\n",
      latency_seconds, latencies.size(), Percentile(latencies, 0.5), Percentile(latencies, 0.99),
      Percentile(latencies, 1.0));
  return 0;
}
