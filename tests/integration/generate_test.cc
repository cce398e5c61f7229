// `pdv generate` against a real PostgreSQL: schema, bulk load, workload and faults.

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "common/cpf.h"
#include "common/cpf_hasher.h"
#include "generate/oltp_schema.h"
#include "localsvc/local_postgres.h"
#include "test_support.h"

namespace pdv::testing {
namespace {

using namespace std::chrono_literals;
constexpr char kCpfKey[] = "integration-test-cpf-key";

class GenerateTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ::setenv("PDV_CPF_KEY", kCpfKey, 1);
    auto pg = localsvc::LocalPostgres::Start({});
    ASSERT_TRUE(pg.ok()) << pg.message();
    pg_ = pg->release();
  }
  static void TearDownTestSuite() { delete pg_; }

  void SetUp() override {
    static std::atomic<int> counter{0};
    db_ = "gen_" + std::to_string(counter++);
    ASSERT_TRUE(pg_->CreateDatabase(db_).ok());
    auto dir = localsvc::ScratchDir::Create("pdv-test-gen");
    ASSERT_TRUE(dir.ok());
    dir_.emplace(std::move(*dir));
  }

  std::string Url(const std::string& app = "pdv-test") const {
    return pg_->Url(db_) + "?application_name=" + app;
  }
  std::filesystem::path File(const std::string& name) const { return dir_->path() / name; }
  std::vector<std::string> Generate(std::vector<std::string> extra) {
    std::vector<std::string> args = {"generate", "--oltp-url", Url("pdv-generate")};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  static localsvc::LocalPostgres* pg_;
  std::string db_;
  std::optional<localsvc::ScratchDir> dir_;
};
localsvc::LocalPostgres* GenerateTest::pg_ = nullptr;

TEST_F(GenerateTest, CreatesTheContractSchemaIdempotently) {
  for (int i = 0; i < 2; ++i) {
    auto r = RunPdv(Generate({}));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  auto conn = Connect(Url());
  auto diffs = generate::OltpSchemaDifferences(conn);
  ASSERT_TRUE(diffs.ok()) << diffs.message();
  EXPECT_TRUE(diffs->empty());
  EXPECT_EQ(ScalarInt(conn,
                      "SELECT count(*) FROM information_schema.columns "
                      "WHERE table_name = 'clientes_clube'"),
            17);
  EXPECT_EQ(Scalar(conn,
                   "SELECT string_agg(tablename, ',') FROM pg_publication_tables "
                   "WHERE pubname = 'pdv_pub'"),
            "clientes_clube");
  // The contract's enumerations are enforced by the table itself.
  auto bad = conn.Exec(
      "INSERT INTO clientes_clube (cliente_id, cpf_hash, nome_completo, email, canal_cadastro, "
      "data_cadastro, ultima_atualizacao, status_clube, opt_in_marketing) VALUES "
      "(gen_random_uuid(), 'h', 'n', 'e', 'telefone', now(), now(), 'ATIVO', true)");
  EXPECT_FALSE(bad.ok());
}

TEST_F(GenerateTest, ADifferentExistingSchemaIsReportedNeverAltered) {
  auto conn = Connect(Url());
  ASSERT_TRUE(conn.Exec("CREATE TABLE clientes_clube (cliente_id uuid PRIMARY KEY, "
                        "cpf_hash text UNIQUE, email integer, status_clube text)")
                  .ok());
  auto r = RunPdv(Generate({"--initial", "10"}));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("differs from the data contract and was not changed"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("column email is integer, the contract says text"), std::string::npos);
  EXPECT_NE(r.output.find("column nome_completo is missing"), std::string::npos);
  EXPECT_NE(r.output.find("email is not unique"), std::string::npos);
  EXPECT_EQ(ScalarInt(conn,
                      "SELECT count(*) FROM information_schema.columns "
                      "WHERE table_name = 'clientes_clube'"),
            4);
  EXPECT_EQ(ScalarInt(conn, "SELECT count(*) FROM pg_publication"), 0);
}

TEST_F(GenerateTest, InitialLoadIsValidConsistentAndWritesOnlyHashes) {
  auto r = RunPdv(
      Generate({"--initial", "20000", "--seed", "5", "--cpf-out", File("cpfs.txt").string()}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("event=initial_load_done rows=20000"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("rebuilt_indexes=true"), std::string::npos);
  EXPECT_NE(r.output.find("progress=initial_load"), std::string::npos)
      << "plain progress lines when stderr is not a terminal";
  auto conn = Connect(Url());
  EXPECT_EQ(ScalarInt(conn, "SELECT count(*) FROM clientes_clube"), 20000);
  auto diffs = generate::OltpSchemaDifferences(conn);
  ASSERT_TRUE(diffs.ok());
  EXPECT_TRUE(diffs->empty()) << "keys rebuilt after the load";

  // Every CPF written is valid and unique, and its HMAC is in the table.
  std::ifstream in(File("cpfs.txt"));
  std::set<std::string> cpfs;
  CpfHasher hasher(kCpfKey);
  std::string values;
  for (std::string line; std::getline(in, line);) {
    auto cpf = Cpf::Parse(line);
    ASSERT_TRUE(cpf.ok()) << line;
    cpfs.insert(line);
    values += (values.empty() ? "('" : ",('") + hasher.Hash(*cpf) + "')";
  }
  EXPECT_EQ(cpfs.size(), 20000u);
  EXPECT_EQ(std::filesystem::status(File("cpfs.txt")).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_EQ(ScalarInt(conn, "SELECT count(*) FROM clientes_clube c JOIN (VALUES " + values +
                                ") v(h) ON v.h = c.cpf_hash"),
            20000);
  // No plaintext CPF anywhere in the row (hex of the hash and the UUID aside, which can
  // hold runs of decimal digits).
  EXPECT_EQ(ScalarInt(conn,
                      "SELECT count(*) FROM clientes_clube c WHERE replace(replace("
                      "c::text, cpf_hash, ''), cliente_id::text, '') ~ '\\d{11}'"),
            0);

  // Same-table consistency checks in SQL.
  EXPECT_EQ(ScalarInt(conn, "SELECT count(DISTINCT email) FROM clientes_clube"), 20000);
  EXPECT_EQ(ScalarInt(conn,
                      "SELECT count(*) FROM clientes_clube WHERE email <> lower(email) "
                      "OR email !~ '^[a-z._]+[0-9]+@[a-z.]+$'"),
            0);
  EXPECT_EQ(ScalarInt(conn,
                      "SELECT count(*) FROM clientes_clube WHERE telefone !~ "
                      "'^\\(\\d\\d\\) 9\\d{4}-\\d{4}$' OR cep !~ '^\\d{5}-\\d{3}$'"),
            0);
  EXPECT_EQ(ScalarInt(conn,
                      "SELECT count(*) FROM clientes_clube WHERE "
                      "age(timezone('UTC', now())::date, data_nascimento) "
                      "NOT BETWEEN interval '18 years' AND interval '81 years'"),
            0);
  EXPECT_EQ(ScalarInt(conn,
                      "SELECT count(*) FROM clientes_clube WHERE ticket_medio_estimado "
                      "NOT BETWEEN 20 AND 300"),
            0);
  // São Paulo (capital) customers: DDD 11, CEP in SP's range.
  EXPECT_EQ(ScalarInt(conn,
                      "SELECT count(*) FROM clientes_clube WHERE cidade = 'São Paulo' AND "
                      "(estado <> 'SP' OR telefone NOT LIKE '(11)%' OR "
                      "replace(cep, '-', '')::int NOT BETWEEN 1000000 AND 19999999)"),
            0);
  EXPECT_GT(ScalarInt(conn, "SELECT count(*) FROM clientes_clube WHERE cidade = 'São Paulo'"), 500);
  double ativo =
      std::stod(Scalar(conn, "SELECT avg((status_clube = 'ATIVO')::int) FROM clientes_clube"));
  EXPECT_NEAR(ativo, 0.85, 0.02);

  // A second load into the now non-empty table keeps the keys in place.
  auto more = RunPdv(Generate({"--initial", "1000", "--seed", "5"}));
  ASSERT_EQ(more.exit_code, 0) << more.output;
  EXPECT_NE(more.output.find("rebuilt_indexes=false"), std::string::npos) << more.output;
  EXPECT_EQ(ScalarInt(conn, "SELECT count(*) FROM clientes_clube"), 21000);
}

TEST_F(GenerateTest, ProgressBarOnATerminal) {
  // `script` gives the command a pseudo-terminal: the bar is redrawn in place.
  std::string cmd =
      PdvBinary() + " generate --oltp-url '" + Url("pdv-generate") + "' --initial 50000 2>&1";
  auto r = RunCommandOutput({"script", "-qec", cmd, "/dev/null"});
  EXPECT_NE(r.find("\r"), std::string::npos) << r;
  EXPECT_NE(r.find("initial_load ["), std::string::npos) << r;
  EXPECT_NE(r.find("] 100% 50000/50000"), std::string::npos) << r;
  EXPECT_EQ(r.find("progress=initial_load"), std::string::npos) << "no plain lines on a terminal";
}

TEST_F(GenerateTest, SameSeedSameData) {
  std::string fingerprint_sql =
      "SELECT md5(string_agg(c::text, '|' ORDER BY cliente_id)) FROM clientes_clube c";
  auto load = [&](const std::string& db, const std::string& seed) {
    EXPECT_TRUE(pg_->CreateDatabase(db).ok());
    auto r = RunPdv({"generate", "--oltp-url", pg_->Url(db), "--initial", "3000", "--seed", seed,
                     "--as-of", "2026-01-15T12:00:00Z"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    auto conn = Connect(pg_->Url(db));
    return Scalar(conn, fingerprint_sql);
  };
  std::string a = load(db_ + "_a", "77"), b = load(db_ + "_b", "77"), c = load(db_ + "_c", "78");
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST_F(GenerateTest, WorkloadMixesInsertsUpdatesAndDeletes) {
  ASSERT_EQ(RunPdv(Generate({"--initial", "2000"})).exit_code, 0);
  auto conn = Connect(Url());
  auto r = RunPdv(Generate({"--rate", "400", "--duration", "4", "--delete-share", "0.05",
                            "--cpf-out", File("new.txt").string()}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::smatch m;
  std::regex stop(
      R"(event=workload_stop transactions=(\d+) inserts=(\d+) updates=(\d+) deletes=(\d+))");
  ASSERT_TRUE(std::regex_search(r.output, m, stop)) << r.output;
  int64_t txns = std::stoll(m[1]), inserts = std::stoll(m[2]), updates = std::stoll(m[3]),
          deletes = std::stoll(m[4]);
  int64_t ops = inserts + updates + deletes;
  // 400 ops/s for 4 s, within the pacing's granularity.
  EXPECT_GT(ops, 1200);
  EXPECT_LT(ops, 1800);
  EXPECT_LT(txns, ops) << "transactions of several operations";
  EXPECT_GT(inserts, ops / 5);
  EXPECT_GT(updates, ops / 3);
  EXPECT_GT(deletes, 0);
  EXPECT_EQ(ScalarInt(conn, "SELECT count(*) FROM clientes_clube"), 2000 + inserts - deletes);
  EXPECT_EQ(static_cast<int64_t>(Lines(ReadFile(File("new.txt"))).size()), inserts);
  // Updates touched status, opt-in, ticket and city, and stamped ultima_atualizacao.
  EXPECT_GT(ScalarInt(conn,
                      "SELECT count(*) FROM clientes_clube WHERE ultima_atualizacao > "
                      "timezone('UTC', now()) - interval '1 minute' AND "
                      "data_cadastro < timezone('UTC', now()) - interval '1 minute'"),
            updates / 3);
}

TEST_F(GenerateTest, KilledConnectionIsRetriedAndTheRunGoesOn) {
  ASSERT_EQ(RunPdv(Generate({"--initial", "500"})).exit_code, 0);
  auto conn = Connect(Url());
  PdvProcess run(Generate({"--rate", "100"}), File("run.log"));
  auto count = [&] { return ScalarInt(conn, "SELECT count(*) FROM clientes_clube"); };
  auto kill = [&] {
    return ScalarInt(conn,
                     "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                     "WHERE application_name = 'pdv-generate'");
  };
  // Conditions, not windows: the workload is writing, is killed, writes again, twice.
  ASSERT_TRUE(WaitFor(60s, [&] { return count() > 505; })) << run.Output();
  int64_t before = count();
  EXPECT_GE(kill(), 1);
  ASSERT_TRUE(WaitFor(60s, [&] { return count() > before + 5; })) << run.Output();
  EXPECT_GE(kill(), 1);
  int64_t after_second = count();
  ASSERT_TRUE(WaitFor(60s, [&] { return count() > after_second + 5; })) << run.Output();
  run.Signal(SIGTERM);
  EXPECT_EQ(run.Wait(30s), 0) << run.Output();
  std::string out = run.Output();
  EXPECT_NE(out.find("event=db_connection_lost"), std::string::npos) << out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(reconnects=(\d+))")));
  EXPECT_GE(std::stoi(m[1]), 1);
  EXPECT_GT(ScalarInt(conn, "SELECT count(*) FROM clientes_clube"), before)
      << "sign-ups continued after the kill";
}

TEST_F(GenerateTest, ServerRestartMidRunIsSurvived) {
  ASSERT_EQ(RunPdv(Generate({"--initial", "300"})).exit_code, 0);
  auto conn = Connect(Url());
  auto count = [&] {
    auto c = pg::Connection::Connect(Url());
    if (!c.ok()) return int64_t{-1};
    auto r = c->Exec("SELECT count(*) FROM clientes_clube");
    return r.ok() ? static_cast<int64_t>(std::stoll(r->str(0, 0))) : int64_t{-1};
  };
  PdvProcess run(Generate({"--rate", "50"}), File("run.log"));
  ASSERT_TRUE(WaitFor(60s, [&] { return count() > 305; })) << run.Output();
  ASSERT_TRUE(pg_->Restart().ok());
  int64_t after_restart = count();
  ASSERT_TRUE(WaitFor(60s, [&] { return count() > after_restart + 5; })) << run.Output();
  run.Signal(SIGTERM);
  EXPECT_EQ(run.Wait(40s), 0) << run.Output();
  EXPECT_NE(run.Output().find("event=db_connection_lost"), std::string::npos) << run.Output();
  EXPECT_NE(run.Output().find("reconnects=1"), std::string::npos) << run.Output();
}

TEST_F(GenerateTest, SigtermStopsCleanlyBetweenTransactions) {
  ASSERT_EQ(RunPdv(Generate({"--initial", "100"})).exit_code, 0);
  auto conn = Connect(Url());
  PdvProcess run(Generate({"--rate", "200"}), File("run.log"));
  ASSERT_TRUE(WaitFor(60s, [&] {
    return ScalarInt(conn, "SELECT count(*) FROM clientes_clube") > 110;
  })) << run.Output();
  ASSERT_TRUE(run.Running());
  auto asked = std::chrono::steady_clock::now();
  run.Signal(SIGTERM);
  EXPECT_EQ(run.Wait(10s), 0) << run.Output();
  // Between transactions, not after the rest of a run: well under the 10 s wait.
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 5s);
  EXPECT_NE(run.Output().find("event=workload_stop"), std::string::npos) << run.Output();
}

TEST_F(GenerateTest, SecretsNeverReachTheLog) {
  auto r = RunPdv({"--log-format", "json", "generate", "--oltp-url", pg_->Url(db_), "--initial",
                   "100", "--rate", "50", "--duration", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find(pg_->password()), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(kCpfKey), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("postgres:***@127.0.0.1"), std::string::npos) << r.output;
  int json_lines = 0;
  for (const auto& line : Lines(r.output)) {
    if (line.rfind("{", 0) != 0) continue;
    EXPECT_TRUE(nlohmann::json::accept(line)) << line;
    ++json_lines;
  }
  EXPECT_GE(json_lines, 4) << r.output;
}

TEST_F(GenerateTest, UnreachableDatabaseIsRetriedThenReported) {
  auto port = localsvc::FreeLoopbackPort();
  ASSERT_TRUE(port.ok());
  auto r = RunPdv({"generate", "--oltp-url",
                   "postgresql://postgres@127.0.0.1:" + std::to_string(*port) + "/x",
                   "--retry-timeout", "1", "--initial", "10"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("event=db_reconnect"), std::string::npos) << r.output;
  auto last = Lines(r.output).back();
  EXPECT_EQ(
      last.rfind("pdv generate: postgres: cannot connect to postgresql://postgres@127.0.0.1:", 0),
      0u)
      << last;
  EXPECT_NE(last.find("attempts)"), std::string::npos) << last;
}

}  // namespace
}  // namespace pdv::testing
