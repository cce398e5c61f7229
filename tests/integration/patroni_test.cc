// pdv against PostgreSQL under Patroni (issue 34): a real etcd and three Patroni-managed
// PostgreSQL 15 nodes on loopback (localsvc/local_patroni.h), the OLTP's primary killed
// as a host crash would kill it.
//
// One etcd member, not three: the tests kill PostgreSQL nodes, never the DCS, so a
// three-member etcd would only cost start-up time here (quorum loss is etcd's own
// subject, not pdv's). The leader key's TTL is 10 s: a failover takes about 11 s.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "localsvc/local_etcd.h"
#include "localsvc/local_patroni.h"
#include "localsvc/local_postgres.h"
#include "test_support.h"

namespace pdv::testing {
namespace {

using namespace std::chrono_literals;

struct PatroniSetup {
  std::unique_ptr<localsvc::LocalEtcd> etcd;
  std::unique_ptr<localsvc::LocalPatroniCluster> cluster;
};

// etcd, then the Patroni cluster with a leader and two streaming replicas.
PatroniSetup StartPatroni(localsvc::LocalPatroniOptions options = {}) {
  PatroniSetup setup;
  auto etcd = localsvc::LocalEtcd::Start();
  EXPECT_TRUE(etcd.ok()) << etcd.message();
  if (!etcd.ok()) return setup;
  setup.etcd = std::move(*etcd);
  options.etcd_endpoint = setup.etcd->Endpoint();
  auto cluster = localsvc::LocalPatroniCluster::Start(options);
  EXPECT_TRUE(cluster.ok()) << cluster.message();
  if (cluster.ok()) setup.cluster = std::move(*cluster);
  return setup;
}

// The harness itself: a leader and replicas, a permanent logical slot copied to every
// replica, and after the leader's crash a new leader that has the slot.
TEST(PatroniHarnessTest, PermanentSlotSurvivesTheLeadersCrash) {
  PatroniSetup setup = StartPatroni();
  ASSERT_TRUE(setup.cluster);
  auto& cluster = *setup.cluster;
  auto leader = cluster.WaitForLeader(10s);
  ASSERT_TRUE(leader.ok()) << leader.message();
  auto members = cluster.Members();
  ASSERT_TRUE(members.ok()) << members.message();
  ASSERT_EQ(members->size(), 3u);

  // The multi-host URL reaches the primary whichever node it is.
  auto primary = Connect(cluster.MultiHostUrl("postgres"));
  EXPECT_EQ(ScalarInt(primary, "SELECT inet_server_port()"), cluster.pg_port(*leader));
  EXPECT_EQ(Scalar(primary, "SELECT pg_is_in_recovery()"), "f");
  ASSERT_TRUE(primary.Exec("CREATE DATABASE source_db").ok());
  ASSERT_TRUE(cluster.SetPermanentSlot("pdv_slot", "source_db").ok());
  ASSERT_TRUE(cluster.WaitForSlotOnReplicas("pdv_slot", 120s).ok());
  for (int i = 0; i < cluster.size(); ++i) {
    auto node = Connect(cluster.NodeUrl(i, "source_db"));
    EXPECT_EQ(Scalar(node,
                     "SELECT count(*) FROM pg_replication_slots WHERE slot_name = "
                     "'pdv_slot' AND slot_type = 'logical'"),
              "1")
        << "node " << i;
    if (i != *leader) {
      EXPECT_EQ(Scalar(node, "SELECT current_setting('hot_standby_feedback')"), "on");
    }
  }

  auto killed = std::chrono::steady_clock::now();
  cluster.KillNode(*leader);
  auto next = cluster.WaitForLeader(120s, *leader);
  ASSERT_TRUE(next.ok()) << next.message();
  double failover_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  std::cout << "Patroni failover: node" << *next << " leads " << failover_s << " s after node"
            << *leader << " was killed\n";
  auto promoted = Connect(cluster.MultiHostUrl("source_db"));
  EXPECT_EQ(ScalarInt(promoted, "SELECT inet_server_port()"), cluster.pg_port(*next));
  EXPECT_EQ(Scalar(promoted,
                   "SELECT count(*) FROM pg_replication_slots WHERE slot_name = "
                   "'pdv_slot'"),
            "1");
  EXPECT_GE(ScalarInt(promoted, "SELECT timeline_id FROM pg_control_checkpoint()"), 1);
}

// A witness of what the OLTP committed: each change sets `telefone` to its own tag
// ("w<n>"), so RAW's rows can be matched one to one with the changes.
struct WitnessedChange {
  std::string tag;
  std::string key;
  int port = 0;      // the primary that acknowledged the commit
  uint64_t lsn = 0;  // its WAL position inside the transaction: below its commit's
};

// "X/Y" as a number (0 when malformed).
uint64_t LsnNumber(const std::string& text) {
  auto slash = text.find('/');
  if (slash == std::string::npos) return 0;
  return std::stoull(text.substr(0, slash), nullptr, 16) << 32 |
         std::stoull(text.substr(slash + 1), nullptr, 16);
}

// Inserts and updates of customers through the multi-host URL, at about `rate` changes
// a second, reconnecting (to whichever node is the primary then) when the connection
// goes. Only acknowledged commits are witnessed.
class WitnessWorkload {
 public:
  WitnessWorkload(std::string url, std::vector<std::string> keys, int rate)
      : url_(std::move(url)), keys_(std::move(keys)), rate_(rate) {
    thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
  }
  void Stop() {
    thread_.request_stop();
    if (thread_.joinable()) thread_.join();
  }
  std::vector<WitnessedChange> Changes() {
    std::lock_guard lock(mu_);
    return changes_;
  }
  size_t CountOn(int port) {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const auto& c : changes_) n += c.port == port;
    return n;
  }
  int64_t unknown() const { return unknown_; }

 private:
  void Run(std::stop_token stop) {
    std::mt19937 rng(34);
    std::optional<pg::Connection> conn;
    int port = 0;
    auto next = std::chrono::steady_clock::now();
    for (int64_t n = 0; !stop.stop_requested(); ++n) {
      if (!conn) {
        auto c = pg::Connection::Connect(url_ + (url_.find('?') == std::string::npos ? "?" : "&") +
                                         "connect_timeout=2");
        if (!c.ok()) {
          std::this_thread::sleep_for(50ms);
          --n;
          continue;
        }
        conn.emplace(std::move(*c));
        auto p = conn->Exec("SELECT inet_server_port()");
        port = p.ok() ? std::stoi(p->str(0, 0)) : 0;
      }
      std::string tag = fmt::format("w{}", n);
      std::string key;
      std::string sql;
      if (n % 4 == 0) {
        auto id = conn->Exec(fmt::format("SELECT md5('{}')::uuid", tag));
        key = id.ok() ? id->str(0, 0) : "";
        sql = fmt::format(
            "INSERT INTO clientes_clube (cliente_id, cpf_hash, nome_completo, email, telefone, "
            "canal_cadastro, data_cadastro, ultima_atualizacao, status_clube, opt_in_marketing) "
            "VALUES ('{0}', 'hash-{1}', 'Witness {1}', '{1}@example.com', '{1}', 'app', now(), "
            "now(), 'ATIVO', true) RETURNING pg_current_wal_lsn()::text",
            key, tag);
      } else {
        key = keys_[rng() % keys_.size()];
        sql = fmt::format(
            "UPDATE clientes_clube SET telefone = '{}', ultima_atualizacao = now() WHERE "
            "cliente_id = '{}' RETURNING pg_current_wal_lsn()::text",
            tag, key);
      }
      auto r = key.empty() ? conn->Exec("SELECT 1/0") : conn->Exec(sql);
      if (r.ok()) {
        std::lock_guard lock(mu_);
        changes_.push_back({tag, key, port, r->rows() == 1 ? LsnNumber(r->str(0, 0)) : 0});
      } else {
        // The commit's fate is unknown when the connection went during it.
        ++unknown_;
        conn.reset();
      }
      // Paced, without catching up after a stall (the failover): a rate, not a burst.
      next += std::chrono::microseconds(1'000'000 / rate_);
      auto now = std::chrono::steady_clock::now();
      if (now > next + 1s) next = now;
      std::this_thread::sleep_until(next);
    }
  }

  std::string url_;
  std::vector<std::string> keys_;
  int rate_;
  std::mutex mu_;
  std::vector<WitnessedChange> changes_;
  std::atomic<int64_t> unknown_{0};
  std::jthread thread_;
};

// The LSN of a failover's re-read in cdc's log (cdc_failover_reconciled at_lsn=), 0 when
// none.
uint64_t ReconciledAt(const std::string& log) {
  for (const auto& line : Lines(log)) {
    if (line.find("event=cdc_failover_reconciled") == std::string::npos) continue;
    if (auto at = line.find(" at_lsn="); at != std::string::npos) {
      std::string lsn = line.substr(at + 8);
      return LsnNumber(lsn.substr(0, lsn.find(' ')));
    }
  }
  return 0;
}

// Issue 34, item 1. The OLTP is a Patroni cluster with pdv_slot permanent; cdc connects
// with the multi-host URL. The primary is SIGKILLed (with its Patroni) under about 1,000
// changes/s: cdc finds the new primary, resumes from its warehouse checkpoint on the
// slot's copy, and every change the new primary committed is in RAW exactly once; RAW's
// latest state equals the new primary's table. With `lagging_replicas`, the replicas'
// walreceivers are stopped before the kill until RAW is past what they received: the old
// primary's last changes are in RAW but not on the new primary (cdc says so, with the
// LSN range, and re-reads those keys).
void OltpFailover(bool lagging_replicas) {
  ::setenv("PDV_CPF_KEY", "integration-test-cpf-key", 1);
  PatroniSetup setup = StartPatroni();
  ASSERT_TRUE(setup.cluster);
  auto& cluster = *setup.cluster;
  auto wh = localsvc::LocalPostgres::Start({});
  ASSERT_TRUE(wh.ok()) << wh.message();
  ASSERT_TRUE((*wh)->EnsureDatabase("warehouse").ok());
  auto dir = localsvc::ScratchDir::Create("pdv-test-patroni");
  ASSERT_TRUE(dir.ok());
  {
    auto primary = Connect(cluster.MultiHostUrl("postgres"));
    ASSERT_TRUE(primary.Exec("CREATE DATABASE source_db").ok());
  }
  const std::string oltp_url = cluster.MultiHostUrl("source_db");
  const std::string wh_url = (*wh)->Url("warehouse");
  auto load = RunPdv({"generate", "--oltp-url", oltp_url, "--initial", "2000"});
  ASSERT_EQ(load.exit_code, 0) << load.output;
  ASSERT_TRUE(cluster.SetPermanentSlot("pdv_slot", "source_db").ok());

  PdvProcess cdc(
      {"cdc", "--oltp-url", oltp_url, "--warehouse-url", wh_url, "--metrics-listen", "127.0.0.1:0"},
      dir->path() / "cdc.log");
  ASSERT_TRUE(WaitFor(120s, [&] {
    return cdc.Output().find("event=cdc_streaming") != std::string::npos || !cdc.Running();
  })) << cdc.Output();
  ASSERT_TRUE(cdc.Running()) << cdc.Output();
  ASSERT_TRUE(cluster.WaitForSlotOnReplicas("pdv_slot", 120s).ok());

  std::vector<std::string> keys;
  {
    auto source = Connect(oltp_url);
    auto r = source.Exec("SELECT cliente_id::text FROM clientes_clube");
    ASSERT_TRUE(r.ok());
    for (int i = 0; i < r->rows(); ++i) keys.push_back(r->str(i, 0));
  }
  WitnessWorkload workload(oltp_url, keys, 1000);
  auto w = Connect(wh_url);
  auto old_leader = cluster.WaitForLeader(10s);
  ASSERT_TRUE(old_leader.ok());
  const int old_port = cluster.pg_port(*old_leader);
  // Steady state first: the workload running and cdc applying it.
  ASSERT_TRUE(WaitFor(60s, [&] {
    return workload.CountOn(old_port) >= 2000 &&
           ScalarInt(w, "SELECT count(*) FROM raw.clientes_clube WHERE telefone LIKE 'w%'") >= 1000;
  })) << cdc.Output();

  if (lagging_replicas) {
    std::string received = "0/0";
    for (int i = 0; i < cluster.size(); ++i) {
      if (i == *old_leader) continue;
      ASSERT_TRUE(cluster.StopWalReceiver(i).ok());
    }
    for (int i = 0; i < cluster.size(); ++i) {
      if (i == *old_leader) continue;
      auto replica = Connect(cluster.NodeUrl(i, "source_db"));
      std::string lsn = Scalar(replica, "SELECT pg_last_wal_receive_lsn()::text");
      if (LsnNumber(lsn) > LsnNumber(received)) received = lsn;
    }
    // RAW gets changes the replicas never will.
    ASSERT_TRUE(WaitFor(60s, [&] {
      return Scalar(w, "SELECT coalesce(max(commit_lsn) > '" + received +
                           "'::pg_lsn, false) FROM raw._cdc_checkpoint") == "t";
    })) << cdc.Output();
  }
  auto killed = std::chrono::steady_clock::now();
  cluster.KillNode(*old_leader);
  if (lagging_replicas) {
    for (int i = 0; i < cluster.size(); ++i) {
      if (i != *old_leader) cluster.KillWalReceiver(i);
    }
  }
  auto new_leader = cluster.WaitForLeader(120s, *old_leader);
  ASSERT_TRUE(new_leader.ok()) << new_leader.message();
  const int new_port = cluster.pg_port(*new_leader);
  double promoted_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  // The first change the new primary acknowledged, and when RAW has it (as itself, or as
  // the state a failover's re-read found).
  WitnessedChange first_new;
  ASSERT_TRUE(WaitFor(60s, [&] {
    for (const auto& c : workload.Changes()) {
      if (c.port == new_port) {
        first_new = c;
        return true;
      }
    }
    return false;
  }));
  ASSERT_TRUE(WaitFor(120s, [&] {
    uint64_t at = ReconciledAt(cdc.Output());
    return (at != 0 && first_new.lsn < at) ||
           ScalarInt(w, "SELECT count(*) FROM raw.clientes_clube WHERE telefone = '" +
                            first_new.tag + "'") > 0 ||
           !cdc.Running();
  })) << cdc.Output();
  double to_raw_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  ASSERT_TRUE(WaitFor(60s, [&] { return workload.CountOn(new_port) >= 2000; }));
  workload.Stop();

  // cdc catches up with the new primary.
  auto source = Connect(cluster.NodeUrl(*new_leader, "source_db"));
  std::string end = Scalar(source, "SELECT pg_current_wal_lsn()");
  ASSERT_TRUE(WaitFor(60s, [&] {
    return Scalar(w, "SELECT coalesce(max(flush_lsn) >= '" + end +
                         "'::pg_lsn, false) FROM raw._cdc_checkpoint") == "t";
  })) << cdc.Output();

  ExpectRawEqualsOltp(cluster.NodeUrl(*new_leader, "source_db"), wh_url);
  std::string out = cdc.Output();
  // Where a failover's re-read put RAW (its rows' LSN): changes the new primary committed
  // before it reach RAW as that state of their key; every one after it, as itself.
  uint64_t reread_at = ReconciledAt(out);
  for (const auto& line : Lines(out)) {
    if (line.find("cdc_source_failover") != std::string::npos ||
        line.find("cdc_failover_reconciled") != std::string::npos) {
      std::cout << line << "\n";
    }
  }
  // Each change the new primary acknowledged is in RAW once; of those the old primary
  // acknowledged, the ones it did not replicate are gone from the source (and from RAW's
  // latest state, checked above).
  std::map<std::string, int64_t> in_raw;
  auto rows = w.Exec(
      "SELECT telefone, count(*) FROM raw.clientes_clube WHERE telefone LIKE 'w%' AND _cdc_op IN "
      "('c', 'u') GROUP BY 1");
  ASSERT_TRUE(rows.ok());
  for (int i = 0; i < rows->rows(); ++i) in_raw[rows->str(i, 0)] = std::stoll(rows->str(i, 1));
  int64_t new_changes = 0, lost = 0, doubled = 0, folded = 0, old_changes = 0, old_in_raw = 0,
          old_doubled = 0;
  for (const auto& c : workload.Changes()) {
    auto it = in_raw.find(c.tag);
    int64_t n = it == in_raw.end() ? 0 : it->second;
    if (c.port == new_port) {
      ++new_changes;
      if (n == 0 && reread_at != 0 && c.lsn < reread_at) {
        ++folded;
      } else {
        lost += n == 0;
      }
      doubled += n > 1;
    } else {
      ++old_changes;
      old_in_raw += n > 0;
      old_doubled += n > 1;
    }
  }
  std::cout << fmt::format(
      "OLTP failover{} under ~1,000 changes/s: new primary in {:.1f} s; its first change in "
      "RAW {:.1f} s after the kill; new primary's changes: {} (lost {}, doubled {}, in RAW as "
      "their key's re-read state {}); old primary's acknowledged: {} (in RAW {}, doubled {}; "
      "the rest were not replicated); commits of unknown outcome: {}\n",
      lagging_replicas ? " (replicas behind RAW)" : "", promoted_s, to_raw_s, new_changes, lost,
      doubled, folded, old_changes, old_in_raw, old_doubled, workload.unknown());
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(doubled, 0);
  EXPECT_EQ(old_doubled, 0);
  EXPECT_NE(out.find("event=cdc_source_failover"), std::string::npos) << out;
  EXPECT_NE(out.find("from_timeline=1 to_timeline=2"), std::string::npos) << out;
  if (lagging_replicas) {
    EXPECT_NE(out.find("raw_has_lost_changes=true"), std::string::npos) << out;
    EXPECT_NE(out.find("event=cdc_failover_reconciled"), std::string::npos) << out;
    // A targeted re-read, never a whole snapshot: the first run's is the only one.
    size_t snapshots = 0;
    for (const auto& line : Lines(out))
      snapshots += line.find("event=cdc_snapshot_done") != std::string::npos;
    EXPECT_EQ(snapshots, 1u) << out;
  } else {
    EXPECT_NE(out.find("raw_has_lost_changes=false"), std::string::npos) << out;
    EXPECT_EQ(folded, 0);
  }
  cdc.Signal(SIGTERM);
  EXPECT_EQ(cdc.Wait(30s), 0) << cdc.Output();
}

// The CI form: one OLTP failover.
TEST(PatroniCdcTest, OltpPrimaryKilledUnderLoadNoChangeLostOrDoubled) { OltpFailover(false); }

// The old primary's last changes reached RAW but no replica: reconciled by a re-read of
// the keys involved.
TEST(PatroniCdcTest, OltpChangesRawHasButNoReplicaGotAreReconciled) { OltpFailover(true); }

// Issue 34, item 2 (the CI form: one warehouse failover). The warehouse is a Patroni
// cluster of two nodes in synchronous_mode: a commit returns once the synchronous standby
// has it, and only that standby may be promoted, so a batch whose position cdc confirmed
// to the source survives the primary's crash. cdc reaches the warehouse through the
// multi-host URL; its primary is SIGKILLed under about 1,000 OLTP changes/s; every change
// is in RAW exactly once afterwards. (Two nodes, not strict: after the failover the new
// primary has no standby and commits alone; production runs three with
// synchronous_mode_strict, README: PostgreSQL under Patroni.)
TEST(PatroniCdcTest, WarehousePrimaryKilledUnderLoadNoBatchLost) {
  ::setenv("PDV_CPF_KEY", "integration-test-cpf-key", 1);
  PatroniSetup setup = StartPatroni({.nodes = 2, .synchronous_mode = true});
  ASSERT_TRUE(setup.cluster);
  auto& cluster = *setup.cluster;
  ASSERT_TRUE(WaitFor(60s, [&] {
    auto members = cluster.Members();
    if (!members.ok()) return false;
    for (const auto& m : *members)
      if (m.role == "sync_standby") return true;
    return false;
  }));
  {
    auto primary = Connect(cluster.MultiHostUrl("postgres"));
    ASSERT_TRUE(primary.Exec("CREATE DATABASE warehouse").ok());
  }
  const std::string wh_url = cluster.MultiHostUrl("warehouse");
  auto oltp = localsvc::LocalPostgres::Start({});
  ASSERT_TRUE(oltp.ok()) << oltp.message();
  ASSERT_TRUE((*oltp)->EnsureDatabase("source_db").ok());
  const std::string oltp_url = (*oltp)->Url("source_db");
  auto dir = localsvc::ScratchDir::Create("pdv-test-patroni-wh");
  ASSERT_TRUE(dir.ok());
  auto load = RunPdv({"generate", "--oltp-url", oltp_url, "--initial", "2000"});
  ASSERT_EQ(load.exit_code, 0) << load.output;

  PdvProcess cdc(
      {"cdc", "--oltp-url", oltp_url, "--warehouse-url", wh_url, "--metrics-listen", "127.0.0.1:0"},
      dir->path() / "cdc.log");
  ASSERT_TRUE(WaitFor(120s, [&] {
    return cdc.Output().find("event=cdc_streaming") != std::string::npos || !cdc.Running();
  })) << cdc.Output();
  ASSERT_TRUE(cdc.Running()) << cdc.Output();
  std::vector<std::string> keys;
  {
    auto source = Connect(oltp_url);
    auto r = source.Exec("SELECT cliente_id::text FROM clientes_clube");
    ASSERT_TRUE(r.ok());
    for (int i = 0; i < r->rows(); ++i) keys.push_back(r->str(i, 0));
  }
  WitnessWorkload workload(oltp_url, keys, 1000);
  const std::string count_sql = "SELECT count(*) FROM raw.clientes_clube WHERE telefone LIKE 'w%'";
  {
    auto w = Connect(wh_url);
    ASSERT_TRUE(WaitFor(60s, [&] {
      return workload.Changes().size() >= 2000 && ScalarInt(w, count_sql) >= 1000;
    })) << cdc.Output();
  }
  auto leader = cluster.WaitForLeader(10s);
  ASSERT_TRUE(leader.ok());
  size_t before_kill = workload.Changes().size();
  auto killed = std::chrono::steady_clock::now();
  cluster.KillNode(*leader);
  auto next = cluster.WaitForLeader(120s, *leader);
  ASSERT_TRUE(next.ok()) << next.message();
  double promoted_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  // The first change committed after the kill, and when RAW has it.
  ASSERT_TRUE(WaitFor(10s, [&] { return workload.Changes().size() > before_kill; }));
  std::string first_after = workload.Changes()[before_kill].tag;
  auto w = Connect(wh_url);
  ASSERT_TRUE(WaitFor(120s, [&] {
    return ScalarInt(w, "SELECT count(*) FROM raw.clientes_clube WHERE telefone = '" + first_after +
                            "'") > 0 ||
           !cdc.Running();
  })) << cdc.Output();
  double to_raw_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  ASSERT_TRUE(WaitFor(60s, [&] { return workload.Changes().size() >= before_kill + 2000; }));
  workload.Stop();
  auto source = Connect(oltp_url);
  std::string end = Scalar(source, "SELECT pg_current_wal_lsn()");
  ASSERT_TRUE(WaitFor(60s, [&] {
    return Scalar(w, "SELECT coalesce(max(flush_lsn) >= '" + end +
                         "'::pg_lsn, false) FROM raw._cdc_checkpoint") == "t";
  })) << cdc.Output();
  ExpectRawEqualsOltp(oltp_url, wh_url);
  std::map<std::string, int64_t> in_raw;
  auto rows = w.Exec(
      "SELECT telefone, count(*) FROM raw.clientes_clube WHERE telefone LIKE 'w%' AND _cdc_op IN "
      "('c', 'u') GROUP BY 1");
  ASSERT_TRUE(rows.ok());
  for (int i = 0; i < rows->rows(); ++i) in_raw[rows->str(i, 0)] = std::stoll(rows->str(i, 1));
  int64_t lost = 0, doubled = 0;
  auto changes = workload.Changes();
  for (const auto& c : changes) {
    auto it = in_raw.find(c.tag);
    int64_t n = it == in_raw.end() ? 0 : it->second;
    lost += n == 0;
    doubled += n > 1;
  }
  std::cout << fmt::format(
      "Warehouse failover under ~1,000 changes/s: new warehouse primary in {:.1f} s; the first "
      "change after the kill in RAW {:.1f} s after it; changes: {} (lost {}, doubled {})\n",
      promoted_s, to_raw_s, changes.size(), lost, doubled);
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(doubled, 0);
  std::string out = cdc.Output();
  EXPECT_EQ(out.find("cdc_warehouse_not_synchronous"), std::string::npos) << out;
  cdc.Signal(SIGTERM);
  EXPECT_EQ(cdc.Wait(30s), 0) << cdc.Output();
}

}  // namespace
}  // namespace pdv::testing
