// `pdv cdc` between two real PostgreSQL servers (OLTP and warehouse).

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <random>
#include <regex>
#include <thread>

#include "localsvc/local_postgres.h"
#include "test_support.h"
#include "warehouse/warehouse.h"

namespace pdv::testing {
namespace {

using namespace std::chrono_literals;

class CdcTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ::setenv("PDV_CPF_KEY", "integration-test-cpf-key", 1);
    auto oltp = localsvc::LocalPostgres::Start({});
    ASSERT_TRUE(oltp.ok()) << oltp.message();
    oltp_ = oltp->release();
    auto wh = localsvc::LocalPostgres::Start({});
    ASSERT_TRUE(wh.ok()) << wh.message();
    wh_ = wh->release();
  }
  static void TearDownTestSuite() {
    delete oltp_;
    delete wh_;
  }

  void SetUp() override {
    static std::atomic<int> counter{0};
    name_ = "cdc_" + std::to_string(counter++);
    ASSERT_TRUE(oltp_->CreateDatabase(name_).ok());
    ASSERT_TRUE(wh_->CreateDatabase(name_).ok());
    auto dir = localsvc::ScratchDir::Create("pdv-test-cdc");
    ASSERT_TRUE(dir.ok());
    dir_.emplace(std::move(*dir));
  }

  std::string OltpUrl() const { return oltp_->Url(name_); }
  std::string WhUrl() const { return wh_->Url(name_); }
  std::vector<std::string> Cdc(std::vector<std::string> extra = {}) const {
    std::vector<std::string> args = {
        "cdc",    "--oltp-url",    OltpUrl(),          "--warehouse-url", WhUrl(),
        "--slot", name_ + "_slot", "--metrics-listen", "127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  void Generate(std::vector<std::string> extra) {
    std::vector<std::string> args = {"generate", "--oltp-url", OltpUrl()};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = RunPdv(args);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  CommandResult CdcOnce(std::vector<std::string> extra = {}) {
    extra.push_back("--once");
    return RunPdv(Cdc(extra));
  }

  void ExpectRawEqualsOltp() { testing::ExpectRawEqualsOltp(OltpUrl(), WhUrl()); }

  void BigTransactionAppliedOnce(const std::string& streaming);

  static localsvc::LocalPostgres* oltp_;
  static localsvc::LocalPostgres* wh_;
  std::string name_;
  std::optional<localsvc::ScratchDir> dir_;
};
localsvc::LocalPostgres* CdcTest::oltp_ = nullptr;
localsvc::LocalPostgres* CdcTest::wh_ = nullptr;

TEST_F(CdcTest, SnapshotThenStreamInsertsUpdatesDeletes) {
  Generate({"--initial", "3000"});
  auto first = CdcOnce();
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("event=cdc_snapshot_done rows=3000"), std::string::npos)
      << first.output;
  auto wh = Connect(WhUrl());
  EXPECT_EQ(ScalarInt(wh, "SELECT count(*) FROM raw.clientes_clube WHERE _cdc_op = 'r'"), 3000);
  ExpectRawEqualsOltp();

  Generate({"--rate", "300", "--duration", "2"});
  auto second = CdcOnce();
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_EQ(second.output.find("cdc_snapshot_done"), std::string::npos) << "no second snapshot";
  for (const char* op : {"c", "u", "d"}) {
    EXPECT_GT(
        ScalarInt(wh, std::string("SELECT count(*) FROM raw.clientes_clube WHERE _cdc_op = '") +
                          op + "'"),
        0)
        << op;
  }
  EXPECT_EQ(ScalarInt(wh,
                      "SELECT count(*) FROM raw.clientes_clube WHERE _cdc_op = 'd' AND "
                      "(_cdc_deleted_at IS NULL OR cliente_id IS NULL)"),
            0);
  ExpectRawEqualsOltp();
  // Exactly the source's changes: every row inserted, updated or deleted at the source
  // (the writers have exited, so their statistics are flushed) is one RAW row.
  auto stats = Connect(OltpUrl());
  EXPECT_EQ(ScalarInt(wh, "SELECT count(*) FROM raw.clientes_clube"),
            ScalarInt(stats,
                      "SELECT n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables "
                      "WHERE relname = 'clientes_clube'"));
  // The checkpoint is what the source was told.
  auto oltp = Connect(OltpUrl());
  EXPECT_EQ(Scalar(oltp, "SELECT confirmed_flush_lsn >= '" +
                             Scalar(wh, "SELECT flush_lsn FROM raw._cdc_checkpoint") +
                             "' FROM pg_replication_slots WHERE slot_name = '" + name_ + "_slot'"),
            "t");
}

// Waits until RAW's checkpoint has reached the source's current WAL position.
bool WaitCaughtUp(pg::Connection& oltp, pg::Connection& wh, std::chrono::seconds timeout) {
  std::string target = Scalar(oltp, "SELECT pg_current_wal_lsn()");
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (Scalar(wh, "SELECT to_regclass('raw._cdc_checkpoint') IS NOT NULL") != "t") {
      std::this_thread::sleep_for(50ms);
      continue;
    }
    std::string at = Scalar(wh, "SELECT coalesce(max(flush_lsn), '0/0') FROM raw._cdc_checkpoint");
    if (Scalar(wh, "SELECT '" + at + "'::pg_lsn >= '" + target + "'::pg_lsn") == "t") return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

TEST_F(CdcTest, ToastCarriedForwardColumnAddedWhileRunningTruncateRecorded) {
  Generate({"--initial", "200"});
  auto wh = Connect(WhUrl());
  ASSERT_TRUE(wh.Exec("LISTEN pdv_raw").ok());
  PdvProcess cdc(Cdc(), dir_->path() / "cdc.log");
  auto oltp = Connect(OltpUrl());
  ASSERT_TRUE(WaitCaughtUp(oltp, wh, 30s)) << cdc.Output();
  // The RAW commit was announced.
  PQconsumeInput(wh.raw());
  PGnotify* note = PQnotifies(wh.raw());
  ASSERT_NE(note, nullptr);
  EXPECT_STREQ(note->relname, "pdv_raw");
  PQfreemem(note);

  // A column added at the source, while cdc runs, with a value big enough to be TOASTed.
  std::string id =
      Scalar(oltp, "SELECT cliente_id FROM clientes_clube ORDER BY cliente_id LIMIT 1");
  ASSERT_TRUE(oltp.Exec("ALTER TABLE clientes_clube ADD COLUMN observacoes text").ok());
  ASSERT_TRUE(
      oltp.Exec("UPDATE clientes_clube SET observacoes = (SELECT string_agg(md5(g::text || "
                "random()::text), '') FROM generate_series(1, 400) g) WHERE cliente_id = '" +
                id + "'")
          .ok());
  ASSERT_TRUE(WaitCaughtUp(oltp, wh, 30s)) << cdc.Output();
  // Updates that leave it alone: one in a later batch (carried from RAW), two in one
  // transaction (the second carried from the same batch).
  ASSERT_TRUE(oltp.Exec("UPDATE clientes_clube SET status_clube = 'INATIVO' WHERE cliente_id = '" +
                        id + "'")
                  .ok());
  ASSERT_TRUE(WaitCaughtUp(oltp, wh, 30s)) << cdc.Output();
  ASSERT_TRUE(oltp.Exec("BEGIN; UPDATE clientes_clube SET opt_in_marketing = NOT opt_in_marketing "
                        "WHERE cliente_id = '" +
                        id +
                        "'; UPDATE clientes_clube SET ticket_medio_estimado = 42 "
                        "WHERE cliente_id = '" +
                        id + "'; COMMIT")
                  .ok());
  ASSERT_TRUE(WaitCaughtUp(oltp, wh, 30s)) << cdc.Output();
  EXPECT_EQ(ScalarInt(oltp, "SELECT length(observacoes) FROM clientes_clube WHERE cliente_id = '" +
                                id + "'"),
            12800);
  EXPECT_EQ(Scalar(wh,
                   "SELECT string_agg(length(observacoes)::text, ',' ORDER BY _cdc_lsn, _cdc_seq) "
                   "FROM raw.clientes_clube WHERE cliente_id = '" +
                       id + "' AND _cdc_op = 'u'"),
            "12800,12800,12800,12800");
  EXPECT_EQ(
      Scalar(wh, "SELECT count(DISTINCT observacoes) FROM raw.clientes_clube WHERE cliente_id = '" +
                     id + "' AND _cdc_op = 'u'"),
      "1");
  ExpectRawEqualsOltp();
  EXPECT_EQ(ScalarInt(wh,
                      "SELECT count(*) FROM raw.clientes_clube WHERE observacoes IS NULL AND "
                      "cliente_id = '" +
                          id + "' AND _cdc_op = 'u'"),
            0);

  ASSERT_TRUE(oltp.Exec("TRUNCATE clientes_clube").ok());
  ASSERT_TRUE(WaitCaughtUp(oltp, wh, 30s)) << cdc.Output();
  EXPECT_EQ(ScalarInt(wh,
                      "SELECT count(*) FROM raw.clientes_clube WHERE _cdc_op = 't' AND "
                      "_cdc_deleted_at IS NOT NULL AND cliente_id IS NULL"),
            1);
  Generate({"--rate", "100", "--duration", "1"});
  ASSERT_TRUE(WaitCaughtUp(oltp, wh, 30s)) << cdc.Output();
  ExpectRawEqualsOltp();
  cdc.Signal(SIGTERM);
  EXPECT_EQ(cdc.Wait(10s), 0) << cdc.Output();
}

// The latest RAW value of observacoes per customer, against the source's, by md5.
void ExpectObservacoesEqual(pg::Connection& oltp, pg::Connection& wh, int64_t expected_rows) {
  auto source = oltp.Exec(
      "SELECT string_agg(cliente_id || ':' || md5(observacoes), ',' ORDER BY cliente_id), "
      "count(*) FROM clientes_clube WHERE observacoes IS NOT NULL");
  auto raw = wh.Exec(
      "SELECT string_agg(cliente_id || ':' || md5(observacoes), ',' ORDER BY cliente_id), "
      "count(*) FROM (SELECT DISTINCT ON (cliente_id) cliente_id, observacoes "
      "FROM raw.clientes_clube ORDER BY cliente_id, _cdc_lsn DESC, _cdc_seq DESC) l "
      "WHERE observacoes IS NOT NULL");
  ASSERT_TRUE(source.ok() && raw.ok());
  EXPECT_EQ(source->str(0, 1), std::to_string(expected_rows));
  EXPECT_EQ(source->str(0, 0), raw->str(0, 0));
}

// Issue 10 (1): TOASTed values carried forward in a transaction whose earlier changes
// already opened the batch's COPY.
TEST_F(CdcTest, ToastCarriedForwardAfterOtherChangesInTheSameTransaction) {
  Generate({"--initial", "300", "--seed", "11"});
  auto oltp = Connect(OltpUrl());
  auto wh = Connect(WhUrl());
  PdvProcess cdc(Cdc(), dir_->path() / "cdc.log");
  ASSERT_TRUE(WaitCaughtUp(oltp, wh, 60s)) << cdc.Output();
  ASSERT_TRUE(oltp.Exec("ALTER TABLE clientes_clube ADD COLUMN observacoes text").ok());
  ASSERT_TRUE(oltp.Exec("CREATE TEMP TABLE big AS SELECT cliente_id FROM clientes_clube "
                        "ORDER BY cliente_id LIMIT 50")
                  .ok());
  // 12 kB of md5 text: compressed it is still past the TOAST threshold, so stored apart.
  ASSERT_TRUE(oltp.Exec("UPDATE clientes_clube c SET observacoes = (SELECT string_agg(md5(g::text "
                        "|| random()::text || c.cliente_id::text), '') FROM generate_series(1, "
                        "375) g) WHERE cliente_id IN (SELECT cliente_id FROM big)")
                  .ok());
  ASSERT_TRUE(WaitCaughtUp(oltp, wh, 60s)) << cdc.Output();
  ASSERT_TRUE(oltp.Exec("BEGIN;"
                        "UPDATE clientes_clube SET ticket_medio_estimado = ticket_medio_estimado "
                        "+ 1 WHERE cliente_id IN (SELECT cliente_id FROM clientes_clube WHERE "
                        "cliente_id NOT IN (SELECT cliente_id FROM big) ORDER BY cliente_id "
                        "LIMIT 100);"
                        "UPDATE clientes_clube SET status_clube = 'INATIVO' WHERE cliente_id IN "
                        "(SELECT cliente_id FROM big);"
                        "COMMIT")
                  .ok());
  ASSERT_TRUE(WaitCaughtUp(oltp, wh, 60s)) << cdc.Output();
  ASSERT_TRUE(cdc.Running()) << cdc.Output();
  EXPECT_EQ(cdc.Output().find("transaction is aborted"), std::string::npos) << cdc.Output();
  // The mixed transaction: 150 rows, the last 50 with the value carried forward.
  EXPECT_EQ(Scalar(wh,
                   "SELECT count(*) || ',' || count(*) FILTER (WHERE length(observacoes) = 12000) "
                   "FROM raw.clientes_clube WHERE _cdc_lsn = (SELECT max(_cdc_lsn) FROM "
                   "raw.clientes_clube)"),
            "150,50");
  ExpectObservacoesEqual(oltp, wh, 50);
  ExpectRawEqualsOltp();
  cdc.Signal(SIGTERM);
  EXPECT_EQ(cdc.Wait(10s), 0) << cdc.Output();
}

// A value over 1 MB carried through several updates, in separate transactions and in
// one, with the batch's row memory (1 MB) too small to hold it: carried from the batch
// itself, through SQL.
TEST_F(CdcTest, MegabyteToastValueCarriedThroughSeveralUpdates) {
  Generate({"--initial", "50", "--seed", "12"});
  auto oltp = Connect(OltpUrl());
  auto wh = Connect(WhUrl());
  PdvProcess cdc(Cdc({"--transaction-memory-mb", "1"}), dir_->path() / "cdc.log");
  ASSERT_TRUE(WaitCaughtUp(oltp, wh, 60s)) << cdc.Output();
  std::string id =
      Scalar(oltp, "SELECT cliente_id FROM clientes_clube ORDER BY cliente_id LIMIT 1");
  std::string where = " WHERE cliente_id = '" + id + "'";
  ASSERT_TRUE(oltp.Exec("ALTER TABLE clientes_clube ADD COLUMN observacoes text").ok());
  ASSERT_TRUE(oltp.Exec("UPDATE clientes_clube SET observacoes = (SELECT string_agg(md5(g::text || "
                        "random()::text), '') FROM generate_series(1, 40000) g)" +
                        where)
                  .ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(oltp.Exec("UPDATE clientes_clube SET ticket_medio_estimado = " +
                          std::to_string(10 + i) + where)
                    .ok());
  }
  ASSERT_TRUE(oltp.Exec("BEGIN; UPDATE clientes_clube SET ticket_medio_estimado = 1;" +
                        std::string("UPDATE clientes_clube SET status_clube = 'INATIVO'") + where +
                        "; UPDATE clientes_clube SET ticket_medio_estimado = 2;"
                        "UPDATE clientes_clube SET opt_in_marketing = false" +
                        where + "; COMMIT")
                  .ok());
  ASSERT_TRUE(WaitCaughtUp(oltp, wh, 60s)) << cdc.Output();
  ASSERT_TRUE(cdc.Running()) << cdc.Output();
  EXPECT_EQ(Scalar(wh,
                   "SELECT string_agg(length(observacoes)::text, ',' ORDER BY _cdc_lsn, "
                   "_cdc_seq) FROM raw.clientes_clube WHERE _cdc_op = 'u' AND observacoes IS "
                   "NOT NULL AND cliente_id = '" +
                       id + "'"),
            "1280000,1280000,1280000,1280000,1280000,1280000,1280000,1280000");
  EXPECT_EQ(ScalarInt(wh,
                      "SELECT count(DISTINCT md5(observacoes)) FROM raw.clientes_clube WHERE "
                      "observacoes IS NOT NULL"),
            1);
  ExpectObservacoesEqual(oltp, wh, 1);
  ExpectRawEqualsOltp();
  cdc.Signal(SIGTERM);
  EXPECT_EQ(cdc.Wait(10s), 0) << cdc.Output();
}

// A column added in the middle of a transaction: its rows are already in the batch, so
// RAW gains the column inside the batch's own transaction.
TEST_F(CdcTest, ColumnAddedInsideATransactionJoinsRawMidBatch) {
  Generate({"--initial", "100", "--seed", "13"});
  auto oltp = Connect(OltpUrl());
  auto wh = Connect(WhUrl());
  PdvProcess cdc(Cdc(), dir_->path() / "cdc.log");
  ASSERT_TRUE(WaitCaughtUp(oltp, wh, 60s)) << cdc.Output();
  ASSERT_TRUE(oltp.Exec("BEGIN;"
                        "UPDATE clientes_clube SET ticket_medio_estimado = 1;"
                        "ALTER TABLE clientes_clube ADD COLUMN apelido text;"
                        "UPDATE clientes_clube SET apelido = 'a' || ticket_medio_estimado;"
                        "COMMIT")
                  .ok());
  ASSERT_TRUE(WaitCaughtUp(oltp, wh, 60s)) << cdc.Output();
  ASSERT_TRUE(cdc.Running()) << cdc.Output();
  EXPECT_EQ(Scalar(wh,
                   "SELECT count(*) FILTER (WHERE apelido IS NULL) || ',' || count(*) "
                   "FILTER (WHERE apelido = 'a1.00') FROM raw.clientes_clube WHERE _cdc_lsn = "
                   "(SELECT max(_cdc_lsn) FROM raw.clientes_clube)"),
            "100,100");
  ExpectRawEqualsOltp();
  cdc.Signal(SIGTERM);
  EXPECT_EQ(cdc.Wait(10s), 0) << cdc.Output();
}

// Issue 10 (4): one UPDATE of 100,000 rows in one transaction, sent whole and streamed:
// `pdv cdc --once` (its own process) stays within a bound that does not grow with the
// transaction (it held ~1.5 kB per row before: 150 MB here).
TEST_F(CdcTest, BigTransactionMemoryIsBoundedWhateverItsSize) {
  Generate({"--initial", "100000", "--seed", "14"});
  ASSERT_EQ(CdcOnce().exit_code, 0);
  auto oltp = Connect(OltpUrl());
  auto peak_rss_mb = [&](const std::vector<std::string>& extra) -> double {
    std::vector<std::string> args = Cdc(extra);
    args.insert(args.begin(), PdvBinary());
    args.push_back("--once");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
      int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 1);
      ::dup2(null, 2);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    int status = 0;
    rusage usage{};
    EXPECT_EQ(::wait4(pid, &status, 0, &usage), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    return usage.ru_maxrss / 1024.0;
  };
  auto wh = Connect(WhUrl());
  int64_t updates = 0;
  for (const char* streaming : {"off", "on"}) {
    ASSERT_TRUE(
        oltp.Exec("UPDATE clientes_clube SET ticket_medio_estimado = ticket_medio_estimado + 1")
            .ok());
    double mb = peak_rss_mb({"--streaming", streaming, "--decoding-work-mem", "1MB"});
    RecordProperty(std::string("peak_rss_mb_streaming_") + streaming, std::to_string(mb));
    EXPECT_LT(mb, 64.0) << "streaming " << streaming;
    updates += 100000;
    EXPECT_EQ(ScalarInt(wh, "SELECT count(*) FROM raw.clientes_clube WHERE _cdc_op = 'u'"),
              updates);
  }
  ExpectRawEqualsOltp();
}

// A transaction bigger than the walsender's decoding memory, with a rolled-back
// savepoint inside, and an aborted big one: streamed before commit (spilled here), or
// sent whole at commit (spilled by the server) and written as it arrives.
void CdcTest::BigTransactionAppliedOnce(const std::string& streaming) {
  Generate({"--initial", "100"});
  ASSERT_EQ(CdcOnce({"--decoding-work-mem", "64kB", "--streaming", streaming}).exit_code, 0);
  auto oltp = Connect(OltpUrl());
  // ~5000 changes (about 2 MB of decoded data) in one transaction, a rolled-back
  // savepoint inside it, and an aborted big transaction.
  ASSERT_TRUE(
      oltp.Exec(
              "BEGIN;"
              "UPDATE clientes_clube SET ticket_medio_estimado = ticket_medio_estimado + 1;"
              "INSERT INTO clientes_clube SELECT gen_random_uuid(), md5(g::text), 'Big ' || g, "
              "  'big' || g || '@example.com', NULL, NULL, 'F', 'Natal', 'RN', '59000-000', 'app', "
              "  timezone('UTC', now()), timezone('UTC', now()), 'ATIVO', true, 50, 'natal' "
              "  FROM generate_series(1, 5000) g;"
              "SAVEPOINT sp;"
              "DELETE FROM clientes_clube WHERE nome_completo LIKE 'Big 1%';"
              "ROLLBACK TO SAVEPOINT sp;"
              "DELETE FROM clientes_clube WHERE nome_completo = 'Big 2';"
              "COMMIT")
          .ok());
  ASSERT_TRUE(
      oltp.Exec("BEGIN; INSERT INTO clientes_clube SELECT gen_random_uuid(), md5('gone' || g), "
                "'Gone ' || g, 'gone' || g || '@example.com', NULL, NULL, 'F', 'Natal', 'RN', "
                "'59000-000', 'app', now(), now(), 'ATIVO', true, 50, 'natal' FROM "
                "generate_series(1, 3000) g; ROLLBACK")
          .ok());
  auto r = CdcOnce({"--decoding-work-mem", "64kB", "--streaming", streaming});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto wh = Connect(WhUrl());
  EXPECT_EQ(ScalarInt(wh, "SELECT count(*) FROM raw.clientes_clube WHERE _cdc_op = 'c'"), 5000);
  EXPECT_EQ(ScalarInt(wh, "SELECT count(*) FROM raw.clientes_clube WHERE _cdc_op = 'd'"), 1);
  EXPECT_EQ(
      ScalarInt(wh, "SELECT count(*) FROM raw.clientes_clube WHERE nome_completo LIKE 'Gone%'"), 0);
  EXPECT_EQ(
      ScalarInt(wh, "SELECT count(DISTINCT _cdc_lsn) FROM raw.clientes_clube WHERE _cdc_op <> 'r'"),
      1);
  ExpectRawEqualsOltp();
}

TEST_F(CdcTest, TransactionBiggerThanDecodingMemoryIsStreamedAndAppliedOnce) {
  BigTransactionAppliedOnce("on");
}

TEST_F(CdcTest, TransactionBiggerThanDecodingMemorySentWholeIsAppliedOnce) {
  BigTransactionAppliedOnce("off");
}

TEST_F(CdcTest, DroppedSlotIsAClearErrorAndResyncRecovers) {
  Generate({"--initial", "500"});
  ASSERT_EQ(CdcOnce().exit_code, 0);
  auto oltp = Connect(OltpUrl());
  ASSERT_TRUE(oltp.Exec("SELECT pg_drop_replication_slot('" + name_ + "_slot')").ok());
  // Changes made while no slot exists: lost to streaming, recovered by the resync.
  ASSERT_TRUE(oltp.Exec("DELETE FROM clientes_clube WHERE cliente_id IN (SELECT cliente_id FROM "
                        "clientes_clube ORDER BY cliente_id LIMIT 7)")
                  .ok());
  // Customers already INATIVO are unchanged by this: the resync must not append them.
  int64_t already = ScalarInt(oltp,
                              "SELECT count(*) FROM clientes_clube WHERE status_clube = "
                              "'INATIVO'");
  ASSERT_GT(already, 0);
  ASSERT_TRUE(oltp.Exec("UPDATE clientes_clube SET status_clube = 'INATIVO'").ok());
  auto r = CdcOnce();
  EXPECT_EQ(r.exit_code, 1) << r.output;
  auto last = Lines(r.output).back();
  EXPECT_NE(
      last.find("replication slot " + name_ +
                "_slot does not exist on the source: the slot was dropped on the same source"),
      std::string::npos)
      << last;
  EXPECT_NE(last.find("pdv cdc --resync"), std::string::npos) << last;

  auto resync = CdcOnce({"--resync"});
  ASSERT_EQ(resync.exit_code, 0) << resync.output;
  EXPECT_NE(resync.output.find(fmt::format(
                "event=cdc_snapshot_done rows=493 deletions=7 unchanged_not_appended={} "
                "appended={}",
                already, 493 - already + 7)),
            std::string::npos)
      << resync.output;
  ExpectRawEqualsOltp();
  Generate({"--rate", "200", "--duration", "1"});
  ASSERT_EQ(CdcOnce().exit_code, 0);
  ExpectRawEqualsOltp();
}

// Issue 13: the checkpoint keeps the source's system identifier and timeline. A source
// that is another database cluster (a server initdb'd on its own) has no slot of ours either, but
// --auto-resync must not take its snapshot: that would mark every customer of RAW deleted. A clear
// error, and RAW untouched.
TEST_F(CdcTest, AutoResyncRefusesASourceThatIsAnotherDatabaseCluster) {
  Generate({"--initial", "300"});
  ASSERT_EQ(CdcOnce().exit_code, 0);
  auto wh = Connect(WhUrl());
  std::string before =
      Scalar(wh, "SELECT count(*) || '/' || max(_cdc_lsn) FROM raw.clientes_clube");
  EXPECT_NE(Scalar(wh, "SELECT source_system_id FROM raw._cdc_checkpoint"), "");
  EXPECT_EQ(Scalar(wh, "SELECT source_timeline FROM raw._cdc_checkpoint"), "1");
  auto elsewhere = localsvc::LocalPostgres::Start({.own_initdb = true});
  ASSERT_TRUE(elsewhere.ok()) << elsewhere.message();
  std::string other = (*elsewhere)->Url(name_);
  ASSERT_TRUE((*elsewhere)->CreateDatabase(name_).ok());
  auto load = RunPdv({"generate", "--oltp-url", other, "--initial", "50"});
  ASSERT_EQ(load.exit_code, 0) << load.output;
  auto r = RunPdv({"cdc", "--oltp-url", other, "--warehouse-url", WhUrl(), "--slot",
                   name_ + "_slot", "--metrics-listen", "127.0.0.1:0", "--auto-resync", "--once"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  auto last = Lines(r.output).back();
  EXPECT_NE(last.find("the source is another database cluster"), std::string::npos) << last;
  EXPECT_NE(last.find("--auto-resync does not resync from another database cluster"),
            std::string::npos)
      << last;
  EXPECT_EQ(Scalar(wh, "SELECT count(*) || '/' || max(_cdc_lsn) FROM raw.clientes_clube"), before);
  auto untouched = Connect(other);
  EXPECT_EQ(Scalar(untouched, "SELECT count(*) FROM pg_replication_slots"), "0")
      << "no slot is made on the wrong source";
  ExpectRawEqualsOltp();
}

TEST_F(CdcTest, BadConfigurationAndUnreachableServers) {
  auto bad = RunPdv({"cdc", "--warehouse-url", "postgresql://h:5432/db?bogus=1", "--once"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(Lines(bad.output).size(), 1u) << bad.output;
  EXPECT_NE(bad.output.find("config: warehouse_url from flag --warehouse-url"), std::string::npos)
      << bad.output;
  auto batch = RunPdv({"cdc", "--batch-rows", "0"});
  EXPECT_EQ(batch.exit_code, 2) << batch.output;
  EXPECT_NE(batch.output.find("cdc.batch_rows from flag --batch-rows"), std::string::npos);

  auto port = localsvc::FreeLoopbackPort();
  ASSERT_TRUE(port.ok());
  auto down = RunPdv({"cdc", "--oltp-url", OltpUrl(), "--warehouse-url",
                      "postgresql://postgres@127.0.0.1:" + std::to_string(*port) + "/w",
                      "--retry-timeout", "1", "--once", "--metrics-listen", ""});
  EXPECT_EQ(down.exit_code, 1) << down.output;
  EXPECT_NE(down.output.find("event=cdc_reconnect"), std::string::npos) << down.output;
  EXPECT_NE(Lines(down.output).back().find("pdv cdc: postgres: cannot connect to"),
            std::string::npos)
      << down.output;
}

// The test that matters: the generator's mixed workload runs while `pdv cdc` is killed
// with SIGKILL at random moments, during the initial snapshot too, and restarted; at the
// end RAW's latest state per customer equals the OLTP table and no change appears twice.
TEST_F(CdcTest, SigkilledAtRandomMomentsLosesAndDoublesNothing) {
  Generate({"--initial", "60000", "--seed", "3"});
  unsigned seed = static_cast<unsigned>(std::random_device{}());
  RecordProperty("random_seed", std::to_string(seed));
  std::mt19937 rng(seed);
  PdvProcess workload({"generate", "--oltp-url", OltpUrl(), "--rate", "600", "--seed", "4"},
                      dir_->path() / "workload.log");
  int kills = 0, kills_in_snapshot = 0;
  // A kill inside the snapshot: wait for the slot (the snapshot starts right after it),
  // then kill. No rate is assumed; if the snapshot finished first, try again.
  for (int attempt = 0; attempt < 8 && kills_in_snapshot == 0; ++attempt) {
    auto log = dir_->path() / ("snapshot" + std::to_string(attempt) + ".log");
    PdvProcess cdc(Cdc(), log);
    ASSERT_TRUE(WaitFor(60s, [&] {
      return cdc.Output().find("cdc_slot_created") != std::string::npos || !cdc.Running();
    }));
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 20 * attempt)(rng)));
    cdc.Signal(SIGKILL);
    cdc.Wait(10s);
    ++kills;
    std::string out = cdc.Output();
    if (out.find("cdc_slot_created") != std::string::npos &&
        out.find("cdc_snapshot_done") == std::string::npos) {
      ++kills_in_snapshot;
    }
    if (out.find("cdc_snapshot_done") != std::string::npos) break;  // too late: go on
  }
  // Streaming kills: each run waits until the workload's changes have reached RAW (a
  // condition, not a window), then dies at a random moment after that.
  auto wh = Connect(WhUrl());
  auto streamed = [&] {
    auto r = wh.Exec("SELECT count(*) FROM raw.clientes_clube WHERE _cdc_op IN ('c','u','d')");
    return r.ok() ? std::stoll(r->str(0, 0)) : -1;
  };
  int64_t needed = 0;
  for (int i = 0; i < 10; ++i) {
    PdvProcess cdc(Cdc(), dir_->path() / ("run" + std::to_string(i) + ".log"));
    needed += 300;
    ASSERT_TRUE(WaitFor(180s, [&] { return streamed() >= needed || !cdc.Running(); }));
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 400)(rng)));
    ASSERT_TRUE(cdc.Running()) << cdc.Output();
    cdc.Signal(SIGKILL);
    cdc.Wait(10s);
    ++kills;
  }
  ASSERT_TRUE(workload.Running()) << workload.Output();
  workload.Signal(SIGTERM);
  ASSERT_EQ(workload.Wait(30s), 0) << workload.Output();
  auto final_run = CdcOnce();
  ASSERT_EQ(final_run.exit_code, 0) << final_run.output;
  EXPECT_GE(kills, 11);
  EXPECT_GE(kills_in_snapshot, 1) << "no kill landed inside the snapshot";
  EXPECT_GE(ScalarInt(wh, "SELECT count(*) FROM raw.clientes_clube WHERE _cdc_op IN ('c','u','d')"),
            3000);
  ExpectRawEqualsOltp();
}

// Issue 13: two cdc instances with the same configuration. One holds the lease and
// streams; the other says it is a standby (log and platform.stage_instances). The active
// one is SIGKILLed under a workload: the standby takes over (a newer lease token, the
// slot taken from the dead walsender) and RAW stays exactly OLTP, nothing lost or doubled.
TEST_F(CdcTest, AStandbyTakesOverWhenTheActiveInstanceIsKilled) {
  Generate({"--initial", "3000", "--seed", "5"});
  PdvProcess workload({"generate", "--oltp-url", OltpUrl(), "--rate", "200", "--seed", "6",
                       "--delete-share", "0.05"},
                      dir_->path() / "workload.log");
  PdvProcess first(Cdc(), dir_->path() / "first.log");
  ASSERT_TRUE(WaitFor(60s, [&] {
    return first.Output().find("event=cdc_streaming") != std::string::npos || !first.Running();
  })) << first.Output();
  PdvProcess second(Cdc(), dir_->path() / "second.log");
  ASSERT_TRUE(WaitFor(30s, [&] {
    return second.Output().find("event=cdc_standby") != std::string::npos || !second.Running();
  })) << second.Output();
  EXPECT_NE(first.Output().find("lease_token=1"), std::string::npos) << first.Output();
  auto wh = Connect(WhUrl());
  EXPECT_EQ(ScalarInt(wh,
                      "SELECT count(*) FROM platform.stage_instances WHERE stage = 'cdc' "
                      "AND role = 'standby'"),
            1);
  // pdv status names both: the active one with its lease token, and the standby.
  auto status = RunPdv({"status", "--oltp-url", OltpUrl(), "--warehouse-url", WhUrl()});
  EXPECT_NE(status.output.find("cdc instances: active "), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("(lease token 1), standby "), std::string::npos) << status.output;
  auto streamed = [&] {
    auto r = wh.Exec("SELECT count(*) FROM raw.clientes_clube WHERE _cdc_op IN ('c','u','d')");
    return r.ok() ? std::stoll(r->str(0, 0)) : -1;
  };
  ASSERT_TRUE(WaitFor(60s, [&] { return streamed() >= 200; }));

  auto killed = std::chrono::steady_clock::now();
  first.Signal(SIGKILL);
  first.Wait(10s);
  ASSERT_TRUE(WaitFor(60s, [&] {
    return second.Output().find("event=cdc_streaming") != std::string::npos || !second.Running();
  })) << second.Output();
  double takeover_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  EXPECT_NE(second.Output().find("event=cdc_active"), std::string::npos);
  EXPECT_NE(second.Output().find("lease_token=2"), std::string::npos) << second.Output();
  std::cout << "cdc: standby streaming " << takeover_s << " s after the active one was killed "
            << "(lease TTL 3 s)\n";
  int64_t at_takeover = streamed();
  ASSERT_TRUE(WaitFor(60s, [&] { return streamed() > at_takeover + 100; }));
  workload.Signal(SIGTERM);
  ASSERT_EQ(workload.Wait(30s), 0) << workload.Output();
  // The standby, now active, catches up; then it stops cleanly and gives the lease up.
  auto oltp = Connect(OltpUrl());
  std::string source_lsn = Scalar(oltp, "SELECT pg_current_wal_lsn()");
  ASSERT_TRUE(WaitFor(60s, [&] {
    return Scalar(wh, "SELECT coalesce(max(flush_lsn) >= '" + source_lsn +
                          "'::pg_lsn, false) FROM raw._cdc_checkpoint") == "t";
  }));
  second.Signal(SIGTERM);
  EXPECT_EQ(second.Wait(30s), 0) << second.Output();
  EXPECT_EQ(ScalarInt(wh,
                      "SELECT count(*) FROM platform.stage_leases WHERE stage = 'cdc' AND "
                      "expires_at > now()"),
            0)
      << "a clean stop releases the lease";
  ExpectRawEqualsOltp();
}

TEST_F(CdcTest, ServerRestartsAndKilledConnectionsAreRidden) {
  Generate({"--initial", "2000"});
  auto with_app = [](const std::string& url) { return url + "?application_name=pdv-cdc"; };
  PdvProcess cdc({"cdc", "--oltp-url", with_app(OltpUrl()), "--warehouse-url", with_app(WhUrl()),
                  "--slot", name_ + "_slot", "--metrics-listen", "127.0.0.1:0"},
                 dir_->path() / "cdc.log");
  PdvProcess workload({"generate", "--oltp-url", OltpUrl(), "--rate", "200", "--duration", "7"},
                      dir_->path() / "workload.log");
  // Each fault waits for cdc to be streaming again (a condition): its slot active on the
  // source, and a cdc backend on the warehouse. A cdc backend on each server is not
  // enough: the lease's own warehouse connection always is one, and a session has its
  // source connection long before it streams (a snapshot, a backoff between attempts), so
  // faults landed before cdc ever streamed and the kills below found nothing to kill.
  auto connected = [&] {
    auto oltp = pg::Connection::Connect(oltp_->Url(name_));
    if (!oltp.ok()) return false;
    auto slot = oltp->Exec("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" + name_ +
                           "_slot' AND active");
    if (!slot.ok() || slot->str(0, 0) == "0") return false;
    auto wh = pg::Connection::Connect(wh_->Url(name_));
    if (!wh.ok()) return false;
    auto r = wh->Exec("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pdv-cdc'");
    return r.ok() && r->str(0, 0) != "0";
  };
  ASSERT_TRUE(WaitFor(60s, connected)) << cdc.Output();
  ASSERT_TRUE(wh_->Restart().ok());
  ASSERT_TRUE(WaitFor(60s, connected)) << cdc.Output();
  ASSERT_TRUE(oltp_->Restart().ok());
  ASSERT_TRUE(WaitFor(60s, connected)) << cdc.Output();
  // Killed on one server, cdc drops its session's connection to the other too, and its
  // lease's warehouse connection may be between a failed renewal and the next one (it
  // reconnects then): the other server may have no cdc backend at that instant. Each
  // kill waits for cdc to be back on that server.
  for (auto* server : {oltp_, wh_}) {
    auto conn = Connect(server->Url(name_));
    EXPECT_TRUE(
        WaitFor(60s,
                [&] {
                  return ScalarInt(conn,
                                   "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                   "WHERE application_name = 'pdv-cdc'") >= 1;
                }))
        << (server == oltp_ ? "oltp" : "warehouse") << "\n"
        << cdc.Output();
  }
  ASSERT_EQ(workload.Wait(60s), 0) << workload.Output();
  auto oltp = Connect(OltpUrl());
  auto wh = Connect(WhUrl());
  ASSERT_TRUE(WaitCaughtUp(oltp, wh, 60s)) << cdc.Output();
  ExpectRawEqualsOltp();
  ASSERT_TRUE(cdc.Running()) << cdc.Output();
  // Position, lag, rate and batch sizes on the metrics port.
  std::smatch port;
  std::string log = cdc.Output();
  ASSERT_TRUE(std::regex_search(log, port, std::regex(R"(url=http://127.0.0.1:(\d+)/metrics)")))
      << log;
  std::string metrics = HttpGet(std::stoi(port[1]), "/metrics");
  for (const char* name : {"pdv_cdc_checkpoint_lsn ", "pdv_cdc_lag_bytes ", "pdv_cdc_lag_seconds ",
                           "pdv_cdc_rows_per_second ", "pdv_cdc_batch_rows_bucket",
                           "pdv_cdc_commit_to_raw_seconds_bucket", "pdv_cdc_reconnects_total "}) {
    EXPECT_NE(metrics.find(name), std::string::npos) << name << "\n" << metrics;
  }
  std::smatch rows;
  ASSERT_TRUE(std::regex_search(metrics, rows, std::regex(R"(pdv_cdc_rows_total (\d+))")));
  EXPECT_GT(std::stol(rows[1]), 500) << cdc.Output();
  EXPECT_EQ(HttpGet(std::stoi(port[1]), "/nope").rfind("HTTP/1.1 404", 0), 0u);
  cdc.Signal(SIGTERM);
  EXPECT_EQ(cdc.Wait(10s), 0) << cdc.Output();
  std::string out = cdc.Output();
  EXPECT_GE(Lines(out).size(), 3u);
  int reconnects = 0;
  for (const auto& line : Lines(out))
    reconnects += line.find("event=cdc_reconnect") != std::string::npos;
  EXPECT_GE(reconnects, 3) << out;
}

TEST_F(CdcTest, SnapshotHoldsNoLockThatBlocksWriters) {
  Generate({"--initial", "150000"});
  PdvProcess cdc(Cdc({"--once"}), dir_->path() / "cdc.log");
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (cdc.Output().find("cdc_slot_created") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  auto oltp = Connect(OltpUrl());
  ASSERT_TRUE(oltp.Exec("SET lock_timeout = '300ms'").ok());
  for (int i = 0; i < 5; ++i) {
    auto r = oltp.Exec(
        "UPDATE clientes_clube SET status_clube = 'INATIVO' WHERE cliente_id IN "
        "(SELECT cliente_id FROM clientes_clube ORDER BY random() LIMIT 10)");
    EXPECT_TRUE(r.ok()) << r.message();
  }
  ASSERT_TRUE(oltp.Exec("DELETE FROM clientes_clube WHERE cliente_id IN "
                        "(SELECT cliente_id FROM clientes_clube LIMIT 3)")
                  .ok());
  bool during_snapshot = cdc.Output().find("cdc_snapshot_done") == std::string::npos;
  EXPECT_TRUE(during_snapshot) << "the writes should have run while the snapshot was copied";
  EXPECT_EQ(cdc.Wait(120s), 0) << cdc.Output();
  EXPECT_NE(cdc.Output().find("progress=cdc_snapshot done=150000 total=150000 pct=100"),
            std::string::npos)
      << cdc.Output();
  // The writes made during the snapshot arrive through the stream, once.
  ASSERT_EQ(CdcOnce().exit_code, 0);
  ExpectRawEqualsOltp();
}

TEST_F(CdcTest, IdleSlotFollowsTheSourceWal) {
  Generate({"--initial", "100"});
  PdvProcess cdc(Cdc(), dir_->path() / "cdc.log");
  auto oltp = Connect(OltpUrl());
  auto wh = Connect(WhUrl());
  ASSERT_TRUE(WaitCaughtUp(oltp, wh, 30s)) << cdc.Output();
  // WAL that holds nothing published: the slot must not keep it.
  ASSERT_TRUE(oltp.Exec("CREATE TABLE unrelated AS SELECT g, md5(g::text) FROM "
                        "generate_series(1, 50000) g")
                  .ok());
  std::string target = Scalar(oltp, "SELECT pg_current_wal_lsn()");
  std::string slot = name_ + "_slot";
  bool followed = false;
  for (int i = 0; i < 100 && !followed; ++i) {
    followed =
        Scalar(oltp, "SELECT confirmed_flush_lsn >= '" + target +
                         "' FROM pg_replication_slots WHERE slot_name = '" + slot + "'") == "t";
    if (!followed) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(followed) << Scalar(oltp,
                                  "SELECT confirmed_flush_lsn FROM pg_replication_slots "
                                  "WHERE slot_name = '" +
                                      slot + "'")
                        << " < " << target;
  cdc.Signal(SIGTERM);
  EXPECT_EQ(cdc.Wait(10s), 0) << cdc.Output();
}

// Issue 13: the OLTP primary fails over to its streaming standby (pg_promote), where the
// logical slot does not exist (PostgreSQL 15). With --auto-resync, cdc (reaching the OLTP
// through a two-host URL, target_session_attrs=read-write) creates the slot on the new
// primary, takes a snapshot and reconciles RAW with it: nothing appended twice (RAW was
// caught up, so the snapshot appends nothing), and the changes and deletions made on the
// new primary afterwards reach RAW. RAW ends equal to the new primary.
TEST(CdcFailoverTest, AutoResyncAfterTheOltpPrimaryFailsOverToItsStandby) {
  ::setenv("PDV_CPF_KEY", "integration-test-cpf-key", 1);
  const std::string password = "failover-test-password-01";
  auto primary = localsvc::LocalPostgres::Start({.password = password});
  ASSERT_TRUE(primary.ok()) << primary.message();
  ASSERT_TRUE((*primary)->EnsureDatabase("source_db").ok());
  auto load = RunPdv({"generate", "--oltp-url", (*primary)->Url("source_db"), "--initial", "2000"});
  ASSERT_EQ(load.exit_code, 0) << load.output;
  auto standby =
      localsvc::LocalPostgres::Start({.password = password, .standby_of = (*primary)->port()});
  ASSERT_TRUE(standby.ok()) << standby.message();
  auto wh = localsvc::LocalPostgres::Start({});
  ASSERT_TRUE(wh.ok()) << wh.message();
  ASSERT_TRUE((*wh)->EnsureDatabase("warehouse").ok());
  auto dir = localsvc::ScratchDir::Create("pdv-test-failover");
  ASSERT_TRUE(dir.ok());
  std::string oltp_url = fmt::format(
      "postgresql://postgres:{}@127.0.0.1:{},127.0.0.1:{}/"
      "source_db?target_session_attrs=read-write",
      password, (*primary)->port(), (*standby)->port());
  std::string wh_url = (*wh)->Url("warehouse");
  PdvProcess cdc({"cdc", "--oltp-url", oltp_url, "--warehouse-url", wh_url, "--auto-resync",
                  "--metrics-listen", "127.0.0.1:0"},
                 dir->path() / "cdc.log");
  ASSERT_TRUE(WaitFor(60s, [&] {
    return cdc.Output().find("event=cdc_streaming") != std::string::npos || !cdc.Running();
  })) << cdc.Output();
  auto changes = RunPdv({"generate", "--oltp-url", (*primary)->Url("source_db"), "--rate", "200",
                         "--duration", "2", "--seed", "8"});
  ASSERT_EQ(changes.exit_code, 0) << changes.output;

  // Both the standby and RAW have everything the primary committed.
  auto p = Connect((*primary)->Url("source_db"));
  auto s = Connect((*standby)->Url("source_db"));
  auto w = Connect(wh_url);
  std::string end = Scalar(p, "SELECT pg_current_wal_lsn()");
  ASSERT_TRUE(WaitFor(60s, [&] {
    return Scalar(s, "SELECT pg_last_wal_replay_lsn() >= '" + end + "'::pg_lsn") == "t" &&
           Scalar(w, "SELECT coalesce(max(flush_lsn) >= '" + end +
                         "'::pg_lsn, false) FROM raw._cdc_checkpoint") == "t";
  }));
  ASSERT_TRUE((*primary)->Stop().ok());
  auto promoted = std::chrono::steady_clock::now();
  ASSERT_EQ(Scalar(s, "SELECT pg_promote(true, 60)"), "t");
  ASSERT_TRUE(WaitFor(120s, [&] {
    std::string out = cdc.Output();
    auto resync = out.find("event=cdc_auto_resync");
    return (resync != std::string::npos &&
            out.find("event=cdc_streaming", resync) != std::string::npos) ||
           !cdc.Running();
  })) << cdc.Output();
  double to_stream_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - promoted).count();
  std::cout << "OLTP failover: cdc streams from the new primary " << to_stream_s
            << " s after the promotion (2,000 customers)\n";
  // It says why, and which source it resynced from: the promoted standby, timeline 1 -> 2.
  EXPECT_NE(cdc.Output().find("the source failed over (timeline 1 -> 2"), std::string::npos)
      << cdc.Output();
  EXPECT_NE(cdc.Output().find("source_timeline=2"), std::string::npos) << cdc.Output();
  EXPECT_NE(cdc.Output().find("deletions=0 unchanged_not_appended="), std::string::npos);
  EXPECT_NE(cdc.Output().find("appended=0 "), std::string::npos)
      << "RAW was caught up: the resync must append nothing\n"
      << cdc.Output();

  // Changes on the new primary, deletions included, stream as usual.
  auto after = RunPdv({"generate", "--oltp-url", (*standby)->Url("source_db"), "--rate", "200",
                       "--duration", "2", "--seed", "9", "--delete-share", "0.2"});
  ASSERT_EQ(after.exit_code, 0) << after.output;
  std::string new_end = Scalar(s, "SELECT pg_current_wal_lsn()");
  ASSERT_TRUE(WaitFor(60s, [&] {
    return Scalar(w, "SELECT coalesce(max(flush_lsn) >= '" + new_end +
                         "'::pg_lsn, false) FROM raw._cdc_checkpoint") == "t";
  })) << cdc.Output();
  ExpectRawEqualsOltp((*standby)->Url("source_db"), wh_url);
  cdc.Signal(SIGTERM);
  EXPECT_EQ(cdc.Wait(30s), 0) << cdc.Output();
}

}  // namespace
}  // namespace pdv::testing
