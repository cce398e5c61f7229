// `pdv cdc` between two real PostgreSQL servers (OLTP and warehouse).

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <map>
#include <random>
#include <regex>
#include <thread>

#include "localsvc/local_postgres.h"
#include "test_support.h"

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
    std::vector<std::string> args = {"cdc",   "--oltp-url", OltpUrl(),      "--warehouse-url",
                                     WhUrl(), "--slot",     name_ + "_slot"};
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

  // Every customer's latest state rebuilt from RAW (deleted ones gone), as text rows,
  // against the OLTP table's.
  static std::map<std::string, std::string> Rows(pg::Connection& conn, const std::string& sql) {
    auto r = conn.Exec(sql);
    EXPECT_TRUE(r.ok()) << r.message();
    std::map<std::string, std::string> out;
    if (!r.ok()) return out;
    for (int i = 0; i < r->rows(); ++i) out[r->str(i, 0)] = r->str(i, 1);
    return out;
  }
  static constexpr char kColumns[] =
      "cliente_id, cpf_hash, nome_completo, email, telefone, data_nascimento, sexo, cidade, "
      "estado, cep, canal_cadastro, data_cadastro, ultima_atualizacao, status_clube, "
      "opt_in_marketing, ticket_medio_estimado, origem_campanha";
  void ExpectRawEqualsOltp() {
    auto oltp = Connect(OltpUrl());
    auto wh = Connect(WhUrl());
    auto source = Rows(oltp, std::string("SELECT cliente_id::text, row(") + kColumns +
                                 ")::text FROM clientes_clube");
    auto rebuilt = Rows(
        wh, std::string("WITH last_truncate AS (SELECT coalesce(max(_cdc_lsn), '0/0') AS lsn "
                        "FROM raw.clientes_clube WHERE _cdc_op = 't'), latest AS ("
                        "SELECT DISTINCT ON (cliente_id) * FROM raw.clientes_clube "
                        "WHERE _cdc_op <> 't' ORDER BY cliente_id, _cdc_lsn DESC, _cdc_seq DESC) "
                        "SELECT cliente_id::text, row(") +
                kColumns +
                ")::text FROM latest, last_truncate WHERE _cdc_op <> 'd' AND "
                "_cdc_lsn > last_truncate.lsn");
    EXPECT_EQ(source.size(), rebuilt.size());
    int shown = 0;
    for (const auto& [id, row] : source) {
      auto it = rebuilt.find(id);
      if (it == rebuilt.end()) {
        if (shown++ < 5) ADD_FAILURE() << "missing from RAW: " << row;
      } else if (it->second != row) {
        if (shown++ < 5) ADD_FAILURE() << "differs:\n OLTP " << row << "\n RAW  " << it->second;
      }
    }
    for (const auto& [id, row] : rebuilt) {
      if (!source.count(id) && shown++ < 5) ADD_FAILURE() << "extra in RAW: " << row;
    }
    // No change twice: a transaction's rows are unique by (LSN, position) (a constraint),
    // and no customer is created twice (snapshot and stream never overlap).
    EXPECT_EQ(ScalarInt(wh,
                        "SELECT count(*) FROM (SELECT cliente_id FROM raw.clientes_clube "
                        "WHERE _cdc_op IN ('r', 'c') GROUP BY 1 HAVING count(*) > 1) d"),
              0);
  }

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

}  // namespace
}  // namespace pdv::testing
