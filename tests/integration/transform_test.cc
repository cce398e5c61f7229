// `pdv transform` against a real PostgreSQL: a small dbt project (tests/fixtures/dbt_shop)
// with seeds, macros, ephemeral and incremental models and every test kind; failures in
// the middle of a DAG; and the platform's own models over RAW written by `pdv cdc`.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "localsvc/local_postgres.h"
#include "pg/connection.h"
#include "test_support.h"
#include "transform/graph.h"
#include "transform/postgres_adapter.h"
#include "transform/project.h"
#include "transform/runner.h"

namespace pdv::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr char kCpfKey[] = "transform-test-cpf-key";

class TransformTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto pg = localsvc::LocalPostgres::Start({});
    ASSERT_TRUE(pg.ok()) << pg.message();
    pg_ = pg->release();
    ::setenv("PDV_CPF_KEY", kCpfKey, 1);
    ::setenv("PDV_CDC_METRICS_LISTEN", "", 1);
  }
  static void TearDownTestSuite() { delete pg_; }

  void SetUp() override {
    static std::atomic<int> counter{0};
    db_ = "shop_" + std::to_string(counter++);
    ASSERT_TRUE(pg_->CreateDatabase(db_).ok());
    auto dir = localsvc::ScratchDir::Create("pdv-test-transform");
    ASSERT_TRUE(dir.ok()) << dir.message();
    dir_.emplace(std::move(*dir));
    project_ = dir_->path() / "shop";
    fs::copy(fs::path(PDV_SOURCE_DIR) / "tests/fixtures/dbt_shop", project_,
             fs::copy_options::recursive);
    ::setenv("SHOP_PG_HOST", "127.0.0.1", 1);
    ::setenv("SHOP_PG_PORT", std::to_string(pg_->port()).c_str(), 1);
    ::setenv("SHOP_PG_DB", db_.c_str(), 1);
    ::setenv("DBT_ENV_SECRET_SHOP_PG_PASSWORD", pg_->password().c_str(), 1);
  }

  CommandResult Dbt(std::vector<std::string> args) {
    std::vector<std::string> full = {"transform"};
    full.insert(full.end(), args.begin(), args.end());
    full.insert(full.end(), {"--project-dir", project_.string()});
    return RunPdv(full);
  }
  void Write(const std::string& rel, const std::string& text) {
    fs::create_directories((project_ / rel).parent_path());
    std::ofstream(project_ / rel) << text;
  }
  std::string Url() const { return pg_->Url(db_); }

  static localsvc::LocalPostgres* pg_;
  std::string db_;
  std::optional<localsvc::ScratchDir> dir_;
  fs::path project_;
};

localsvc::LocalPostgres* TransformTest::pg_ = nullptr;

TEST_F(TransformTest, BuildsSeedsModelsAndTestsWithArtifacts) {
  auto r = Dbt({"build"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Done. PASS=16 WARN=1 ERROR=0 SKIP=0 TOTAL=17"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("OK loaded seed file analytics_raw.raw_orders"), std::string::npos);
  EXPECT_NE(r.output.find("OK created sql table model analytics_marts.customer_totals"),
            std::string::npos);
  EXPECT_NE(r.output.find("WARN 1 accepted_values_stg_customers_status__active"),
            std::string::npos);
  EXPECT_NE(r.output.find(" of 17 START sql view model analytics_staging.stg_customers"),
            std::string::npos);

  auto conn = Connect(Url());
  // The macro, the ephemeral model inlined as a CTE and vars all took effect.
  EXPECT_EQ(Scalar(conn,
                   "select string_agg(format('%s:%s:%s:%s', id, orders, total_cents, vip), ' ' "
                   "order by id) from analytics_marts.customer_totals"),
            "1:2:13025:t 2:0:0:f 3:1:500:f 4:0:0:f");
  EXPECT_EQ(ScalarInt(conn, "select count(*) from pg_class where relname = 'stg_orders'"), 0);
  // Seed types: inferred, and column_types honoured.
  EXPECT_EQ(
      Scalar(conn,
             "select string_agg(column_name || ' ' || data_type, ', ' order by ordinal_position) "
             "from information_schema.columns where table_name = 'raw_orders'"),
      "order_id integer, customer_id integer, amount numeric, paid boolean, "
      "ordered_at timestamp without time zone");
  EXPECT_EQ(
      Scalar(conn,
             "select numeric_precision || ',' || numeric_scale from information_schema.columns "
             "where table_name = 'raw_orders' and column_name = 'amount'"),
      "10,2");
  EXPECT_EQ(Scalar(conn, "select name from analytics_raw.raw_customers where id = 1"),
            "Ana, da Silva");
  EXPECT_EQ(
      ScalarInt(conn, "select count(*) from analytics_raw.raw_customers where status is null"), 1);
  // The table's configured index exists.
  EXPECT_EQ(ScalarInt(conn, "select count(*) from pg_indexes where tablename = 'customer_totals'"),
            1);

  auto manifest = nlohmann::json::parse(ReadFile(project_ / "target/manifest.json"));
  const auto& node = manifest["nodes"]["model.shop.customer_totals"];
  EXPECT_EQ(node["resource_type"], "model");
  EXPECT_EQ(node["schema"], "analytics_marts");
  EXPECT_EQ(node["config"]["materialized"], "table");
  EXPECT_EQ(node["depends_on"]["nodes"].size(), 2u);
  EXPECT_EQ(manifest["sources"].size(), 0u);
  EXPECT_NE(node["compiled_code"].get<std::string>().find("with __dbt__cte__stg_orders as ("),
            std::string::npos);
  EXPECT_EQ(manifest["parent_map"]["model.shop.customer_totals"].size(), 2u);
  auto results = nlohmann::json::parse(ReadFile(project_ / "target/run_results.json"));
  EXPECT_EQ(results["results"].size(), 17u);
  int warned = 0;
  for (const auto& res : results["results"]) {
    if (res["status"] == "warn") {
      ++warned;
      EXPECT_EQ(res["failures"], 1);
    }
  }
  EXPECT_EQ(warned, 1);
  EXPECT_TRUE(fs::exists(project_ / "target/compiled/shop/models/marts/customer_totals.sql"));
}

// --threads: independent nodes run at once, each on its own connection, with the same
// results. Two models prove the overlap: each takes a session lock (held by its worker's
// connection to the end of the run) and waits (up to 60 s, a condition, not a pace) until
// the other's is held too; run one after the other, the first would give up.
TEST_F(TransformTest, ThreadsRunIndependentNodesAtOnceWithTheSameResults) {
  auto waiting_model = [](int mine, int other) {
    return fmt::format(
        "{{{{ config(materialized='table', pre_hook=\"select pg_advisory_lock({0}); do $$ "
        "begin for i in 1..1200 loop exit when exists (select 1 from pg_locks where locktype = "
        "'advisory' and objid = {1} and granted); perform pg_sleep(0.05); end loop; if not "
        "exists (select 1 from pg_locks where locktype = 'advisory' and objid = {1} and "
        "granted) then raise exception 'the other model never ran alongside'; end if; end "
        "$$\") }}}}\nselect {0} as id\n",
        mine, other);
  };
  Write("models/marts/together_a.sql", waiting_model(7101, 7102));
  Write("models/marts/together_b.sql", waiting_model(7102, 7101));
  auto r = Dbt({"build", "--threads", "4"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Concurrency: 4 threads"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Done. PASS=18 WARN=1 ERROR=0 SKIP=0 TOTAL=19"), std::string::npos)
      << r.output;
  auto conn = Connect(Url());
  EXPECT_EQ(Scalar(conn,
                   "select string_agg(format('%s:%s:%s:%s', id, orders, total_cents, vip), ' ' "
                   "order by id) from analytics_marts.customer_totals"),
            "1:2:13025:t 2:0:0:f 3:1:500:f 4:0:0:f");
  auto results = nlohmann::json::parse(ReadFile(project_ / "target/run_results.json"));
  EXPECT_EQ(results["results"].size(), 19u);
}

TEST_F(TransformTest, IncrementalStrategiesAndFullRefresh) {
  ASSERT_EQ(Dbt({"build"}).exit_code, 0);
  // A new order arrives and an existing one changes.
  Write("seeds/raw_orders.csv",
        "order_id,customer_id,amount,paid,ordered_at\n"
        "10,1,50.25,true,2024-05-01 10:00:00\n11,1,80.00,true,2024-05-02 11:30:00\n"
        "12,2,20.50,false,2024-05-03 09:15:00\n13,3,7.00,true,2024-05-04 18:45:00\n"
        "14,2,99.99,true,2024-05-05 08:00:00\n");
  auto r = Dbt({"build", "--select", "raw_orders+"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto conn = Connect(Url());
  // append: only the new row is added.
  EXPECT_EQ(Scalar(conn,
                   "select string_agg(order_id || '=' || amount, ' ' order by order_id) "
                   "from analytics_marts.orders_appended"),
            "10=50.25 11=80.00 12=20.50 13=5.00 14=99.99");
  // merge: 13 updated in place (its loaded_at moves), 14 inserted, nothing doubled.
  EXPECT_EQ(Scalar(conn,
                   "select string_agg(order_id || '=' || amount, ' ' order by order_id) "
                   "from analytics_marts.orders_merged"),
            "10=50.25 11=80.00 12=20.50 13=7.00 14=99.99");
  // delete+insert by the key.
  EXPECT_EQ(ScalarInt(conn, "select count(*) from analytics_marts.orders_replaced"), 5);
  EXPECT_EQ(Scalar(conn, "select doubled from analytics_marts.orders_replaced where order_id = 13"),
            "14.00");
  EXPECT_NE(r.output.find("OK created sql incremental model analytics_marts.orders_appended"),
            std::string::npos);
  EXPECT_NE(r.output.find("[INSERT 0 1 in"), std::string::npos) << r.output;

  r = Dbt({"run", "--select", "orders_appended", "--full-refresh"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[SELECT 5 in"), std::string::npos) << r.output;
  EXPECT_EQ(Scalar(conn, "select amount from analytics_marts.orders_appended where order_id = 13"),
            "7.00");
}

// Issue 32: a project builds any number of times in a row, as on dbt-core. A seed that
// exists is emptied and reloaded in place (the views on it stay); --full-refresh recreates
// it, the views on it go with the old table (cascade) and the same run rebuilds them.
TEST_F(TransformTest, EveryBuildRunsAgainAndAReloadedSeedKeepsTheViewsOnIt) {
  Write("models/staging/stg_customers_named.sql",
        "select * from {{ ref('stg_customers') }} where name is not null\n");
  auto conn = Connect(Url());
  auto oid = [&](const std::string& relation) {
    return Scalar(conn, "select coalesce(to_regclass('" + relation + "')::oid::text, 'missing')");
  };
  for (int round = 0; round < 2; ++round) {
    auto r = Dbt({"build"});
    ASSERT_EQ(r.exit_code, 0) << "round " << round << ": " << r.output;
  }
  std::string seed = oid("analytics_raw.raw_customers");
  std::string view = oid("analytics_staging.stg_customers");
  std::string view_on_view = oid("analytics_staging.stg_customers_named");
  ASSERT_NE(view_on_view, "missing");
  auto r = Dbt({"seed"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(oid("analytics_raw.raw_customers"), seed);  // truncated and reloaded
  EXPECT_EQ(oid("analytics_staging.stg_customers"), view);
  EXPECT_EQ(oid("analytics_staging.stg_customers_named"), view_on_view);
  for (const std::vector<std::string>& command : std::vector<std::vector<std::string>>{
           {"build", "--full-refresh"}, {"build"}, {"run", "--full-refresh"}, {"build"}}) {
    r = Dbt(command);
    ASSERT_EQ(r.exit_code, 0) << command[0] << " " << command.size() << ": " << r.output;
  }
  EXPECT_NE(oid("analytics_raw.raw_customers"), seed);  // recreated by the full refresh
  EXPECT_NE(oid("analytics_staging.stg_customers_named"), "missing");
  int64_t rows = ScalarInt(conn, "select count(*) from analytics_raw.raw_customers");
  // A seed whose columns changed is not reloaded into the old table: a clear error, the
  // table as it was; --full-refresh recreates it.
  std::string csv;
  {
    std::ifstream in(project_ / "seeds/raw_customers.csv");
    std::string line;
    for (bool header = true; std::getline(in, line); header = false) {
      csv += line + (header ? ",apelido\n" : ",x\n");
    }
  }
  Write("seeds/raw_customers.csv", csv);
  r = Dbt({"seed"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("seeds/raw_customers.csv:1: the seed's columns"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("--full-refresh"), std::string::npos) << r.output;
  EXPECT_EQ(ScalarInt(conn, "select count(*) from analytics_raw.raw_customers"), rows);
  r = Dbt({"build", "--full-refresh"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(ScalarInt(conn, "select count(*) from analytics_raw.raw_customers where apelido = 'x'"),
            rows);
  r = Dbt({"build"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

// Issue 31: the templates' log(info=True), print() and exceptions.warn() go through the
// run's reporter (timestamped lines, its secret scrubbing), not straight to stderr.
TEST_F(TransformTest, TemplateMessagesGoThroughTheReporter) {
  Write("models/noisy.sql",
        "{{ log('hello from a model', info=True) }}{{ log('not shown') }}"
        "{{ print('printed too') }}{{ exceptions.warn('careful here') }}select 1 as x\n");
  auto r = Dbt({"run", "--select", "noisy"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex(R"(\d\d:\d\d:\d\d  hello from a model)")))
      << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex(R"(\d\d:\d\d:\d\d  printed too)")))
      << r.output;
  EXPECT_NE(r.output.find("warning: careful here"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("not shown"), std::string::npos) << r.output;
}

TEST_F(TransformTest, ErrorsMidDagSkipDependantsOnly) {
  Write("models/marts/broken.sql",
        "select id\nfrom {{ ref('stg_customers') }}\njoin no_such_table using (id)\n");
  Write("models/marts/after_broken.sql", "select * from {{ ref('broken') }}\n");
  Write("tests/assert_never.sql",
        "select order_id from {{ ref('orders_replaced') }} where order_id < 12\n");
  Write("models/marts/odd.sql", "{{ config(materialized='dynamic_table') }}\nselect 1 as x\n");
  Write("models/marts/more.yml",
        "version: 2\nmodels:\n  - name: orders_appended\n    columns:\n      - name: order_id\n"
        "        tests:\n          - unique:\n              config:\n                "
        "store_failures: true\n");
  auto r = Dbt({"build"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("ERROR creating sql table model analytics_marts.broken"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("models/marts/broken.sql:3: relation \"no_such_table\" does not exist"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("SKIP relation analytics_marts.after_broken"), std::string::npos);
  EXPECT_NE(r.output.find("FAIL 2 assert_never"), std::string::npos);
  EXPECT_NE(r.output.find("Got 2 results, configured to fail if != 0"), std::string::npos);
  // Models independent of the failures still run.
  EXPECT_NE(r.output.find("OK created sql table model analytics_marts.customer_totals"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("OK created sql incremental model analytics_marts.orders_merged"),
            std::string::npos);
  // store_failures is supported now (transform_configs_test): the unique test passes and
  // keeps its (no) failing rows in the audit schema.
  EXPECT_NE(r.output.find("PASS unique_orders_appended_order_id"), std::string::npos) << r.output;
  EXPECT_NE(
      r.output.find("models/marts/odd.sql: unknown materialization 'dynamic_table' (view, "
                    "table, incremental, materialized_view, ephemeral, or a {% materialization "
                    "%} of the project or a package)"),
      std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("ERROR=3 SKIP="), std::string::npos) << r.output;
  auto conn = Connect(Url());
  EXPECT_EQ(
      ScalarInt(conn, "select count(*) from pg_class where relname in ('broken', 'after_broken')"),
      0);
}

// dbt build holds a node back only for tests whose every input is upstream of it: a failing
// test that also reads a node outside its ancestry stops the nodes built from both inputs,
// not those built from one of them.
TEST_F(TransformTest, BuildWaitsOnlyForTestsOfItsOwnInputs) {
  Write("tests/assert_cross.sql",
        "select c.id\nfrom {{ ref('stg_customers') }} c\n"
        "cross join {{ ref('orders_replaced') }} o\n");
  Write("models/marts/from_customers.sql", "select id from {{ ref('stg_customers') }}\n");
  Write("models/marts/from_both.sql",
        "select c.id, o.order_id\nfrom {{ ref('stg_customers') }} c\n"
        "cross join {{ ref('orders_replaced') }} o\n");
  auto r = Dbt({"build", "--threads", "1"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("FAIL"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(" assert_cross "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("OK created sql table model analytics_marts.from_customers"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("SKIP relation analytics_marts.from_both"), std::string::npos)
      << r.output;
  // The failing test ran before the node it holds back was skipped, and after both inputs.
  EXPECT_LT(r.output.find(" assert_cross "),
            r.output.find("SKIP relation analytics_marts.from_both"));
}

TEST_F(TransformTest, ProjectErrorsAreOneClearLine) {
  Write("models/loop_a.sql", "select * from {{ ref('loop_b') }}");
  Write("models/loop_b.sql", "select * from {{ ref('loop_a') }}");
  auto r = Dbt({"run"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.output,
            "pdv transform run: found a cycle: model.shop.loop_a --> model.shop.loop_b --> "
            "model.shop.loop_a\n");
  fs::remove(project_ / "models/loop_a.sql");
  fs::remove(project_ / "models/loop_b.sql");

  Write("models/orphan.sql",
        "-- needs a model that does not exist\nselect * from {{ ref('ghost') }}");
  r = Dbt({"run"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.output,
            "pdv transform run: models/orphan.sql:2: model 'orphan' depends on ref('ghost'), "
            "which is not a model or seed of this project\n");
  fs::remove(project_ / "models/orphan.sql");

  Write("dbt_project.yml", "name: shop\nprofile: shop\nmodels:\n  shop:\n  +materialized: [\n");
  r = Dbt({"run"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("pdv transform run: dbt_project.yml:6: invalid YAML"), std::string::npos)
      << r.output;
}

// Issue 32: Jinja in dbt_project.yml and property-file configs renders as dbt's native
// rendering reads it (jaffle-shop's `+enabled: "{{ var('load_source_data', false) }}"`),
// and a value that is no boolean is an error naming the file, never an abort.
TEST_F(TransformTest, RenderedConfigsAreTypedAsDbtTypesThem) {
  std::string project = ReadFile(project_ / "dbt_project.yml");
  project.replace(project.find("seeds:\n  shop:\n"), std::string("seeds:\n  shop:\n").size(),
                  "seeds:\n  shop:\n    jaffle-data:\n      +enabled: \"{{ "
                  "var('load_source_data', false) }}\"\n");
  Write("dbt_project.yml", project);
  Write("seeds/jaffle-data/raw_stores.csv", "id,name\n1,Centro\n");
  Write("models/extra/audit_orders.sql", "select 1 as checked\n");
  Write("models/extra/properties.yml",
        "version: 2\nmodels:\n  - name: audit_orders\n    config:\n      enabled: \"{{ "
        "var('orders_on', true) }}\"\n");
  auto listed = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"ls"};
    args.insert(args.end(), extra.begin(), extra.end());
    return Dbt(args);
  };
  auto r = listed({});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("raw_stores"), std::string::npos) << r.output;  // false: off
  EXPECT_NE(r.output.find("audit_orders"), std::string::npos) << r.output;
  r = listed({"--vars", "{load_source_data: true, orders_on: false}"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("raw_stores"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("audit_orders"), std::string::npos) << r.output;
  r = listed({"--vars", "{load_source_data: maybe}"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("pdv transform ls: dbt_project.yml (seeds: "), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("config 'enabled' must be true or false, not \"maybe\""),
            std::string::npos)
      << r.output;
  r = listed({"--vars", "{orders_on: sometimes}"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("models/extra/properties.yml:5: config 'enabled' must be true or false"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("terminate"), std::string::npos) << r.output;
}

TEST_F(TransformTest, TableReadersNeverSeeItMissing) {
  ASSERT_EQ(Dbt({"build"}).exit_code, 0);
  std::atomic<bool> done{false};
  std::atomic<int> reads{0}, failures{0};
  std::string first_error;
  std::thread reader([&] {
    auto conn = Connect(Url());
    while (!done) {
      auto r = conn.Exec("select count(*) from analytics_marts.customer_totals");
      if (!r.ok() || r->get(0, 0) != "4") {
        if (failures++ == 0) first_error = r.ok() ? std::string(r->get(0, 0)) : r.message();
      }
      ++reads;
    }
  });
  for (int i = 0; i < 10; ++i) {
    auto r = Dbt({"run", "-s", "customer_totals"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  done = true;
  reader.join();
  EXPECT_GT(reads.load(), 10);
  EXPECT_EQ(failures.load(), 0) << first_error;
}

TEST_F(TransformTest, CompileAndListMatchGolden) {
  auto r = Dbt({"compile", "--select", "customer_totals"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string golden =
      ReadFile(fs::path(PDV_SOURCE_DIR) / "tests/golden/transform/customer_totals.sql");
  EXPECT_EQ(r.output, golden);
  r = Dbt({"ls", "--select", "tag:marts", "--exclude", "orders_replaced"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // As dbt ls: the selected models, and the tests attached to them (indirect selection).
  EXPECT_EQ(r.output,
            "shop.marts.customer_totals\nshop.marts.orders_appended\nshop.marts.orders_merged\n"
            "shop.assert_vip_has_orders\nshop.is_positive_orders_merged_amount\n"
            "shop.not_null_customer_totals_total_cents\n"
            "shop.relationships_customer_totals_id__id__ref__stg_customers__\n"
            "shop.unique_orders_merged_order_id\n");
}

// The platform's models over RAW from `pdv cdc`, compared with the eligibility rule
// recomputed by an independent query over the OLTP table.
class PlatformModelsTest : public TransformTest {
 protected:
  void SetUp() override {
    TransformTest::SetUp();
    oltp_ = pg_->Url(db_);
    warehouse_db_ = db_ + "_wh";
    ASSERT_TRUE(pg_->CreateDatabase(warehouse_db_).ok());
    warehouse_ = pg_->Url(warehouse_db_);
    slot_ = "slot_" + db_;
  }
  void Generate(std::vector<std::string> args) {
    std::vector<std::string> full = {"generate", "--oltp-url", oltp_};
    full.insert(full.end(), args.begin(), args.end());
    auto r = RunPdv(full);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  void CdcOnce() {
    auto r = RunPdv(
        {"cdc", "--once", "--oltp-url", oltp_, "--warehouse-url", warehouse_, "--slot", slot_});
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  CommandResult Transform(std::string command) {
    return RunPdv({"transform", command, "--warehouse-url", warehouse_});
  }
  // cliente_id -> the dimension's fields, for live customers.
  std::map<std::string, std::string> Dimension() {
    auto conn = Connect(warehouse_);
    auto r = conn.Exec(
        "select cliente_id::text, concat_ws('|', cpf_hash, primeiro_nome, status_clube, "
        "opt_in_marketing, "
        "ticket_medio_estimado, origem_campanha, elegivel_a_partir_de, atualizado_em) "
        "from marts.dim_clientes_clube where not _deleted");  // fails (empty) before the first run
    std::map<std::string, std::string> out;
    for (int i = 0; r.ok() && i < r->rows(); ++i) out[r->str(i, 0)] = r->str(i, 1);
    return out;
  }
  std::map<std::string, std::string> Expected() {
    auto conn = Connect(oltp_);
    auto r = conn.Exec(
        "set timezone = 'UTC'; select cliente_id::text, concat_ws('|', cpf_hash, "
        "split_part(trim(nome_completo), ' ', 1), status_clube, opt_in_marketing, "
        "round(ticket_medio_estimado, 2), origem_campanha, "
        "case when status_clube = 'ATIVO' and opt_in_marketing "
        "  then (data_cadastro + interval '5 minutes') at time zone 'UTC' end, "
        "ultima_atualizacao at time zone 'UTC') from clientes_clube");
    EXPECT_TRUE(r.ok()) << r.message();
    std::map<std::string, std::string> out;
    for (int i = 0; r.ok() && i < r->rows(); ++i) out[r->str(i, 0)] = r->str(i, 1);
    return out;
  }
  void ExpectDimensionMatchesOltp() {
    auto dim = Dimension();
    auto expected = Expected();
    ASSERT_EQ(dim.size(), expected.size());
    int shown = 0;
    for (const auto& [id, fields] : expected) {
      auto it = dim.find(id);
      if (it == dim.end() || it->second != fields) {
        if (shown++ < 3)
          ADD_FAILURE() << id << " expected " << fields << " got "
                        << (it == dim.end() ? "(missing)" : it->second);
      }
    }
    EXPECT_EQ(shown, 0);
  }
  std::string oltp_, warehouse_db_, warehouse_, slot_;
};

TEST_F(PlatformModelsTest, DimensionEqualsTheRuleOverOltpAfterMixedWorkload) {
  Generate({"--initial", "3000", "--seed", "7"});
  CdcOnce();
  auto r = Transform("run");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(
      r.output.find("OK created sql incremental model marts.dim_clientes_clube ... [SELECT 3000"),
      std::string::npos)
      << r.output;
  ExpectDimensionMatchesOltp();

  // Inserts, updates and deletes; the incremental run reads only what is new.
  Generate({"--rate", "400", "--duration", "2", "--delete-share", "0.2"});
  CdcOnce();
  r = Transform("build");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("ERROR=0 SKIP=0"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("[SELECT"), std::string::npos) << "an incremental run rebuilt a model:\n"
                                                         << r.output;
  ExpectDimensionMatchesOltp();
  auto wh = Connect(warehouse_);
  int64_t tombstones =
      ScalarInt(wh, "select count(*) from marts.dim_clientes_clube where _deleted");
  EXPECT_GT(tombstones, 0);
  EXPECT_EQ(
      ScalarInt(
          wh, "select count(*) from marts.dim_clientes_clube where _deleted and cpf_hash is null"),
      0);
  // Staging holds exactly the live customers.
  EXPECT_EQ(ScalarInt(wh, "select count(*) from staging.stg_clientes_clube"),
            static_cast<int64_t>(Expected().size()));
  // A full build of staging (its anti-join, not the incremental DISTINCT ON) over the same
  // inserts, updates and deletes holds the same rows.
  std::string staging_rows =
      "select md5(string_agg(s::text, ',' order by cliente_id)) from staging.stg_clientes_clube s";
  std::string incremental_staging = Scalar(wh, staging_rows);
  r = RunPdv({"transform", "run", "--select", "stg_clientes_clube", "--full-refresh",
              "--warehouse-url", warehouse_});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Scalar(wh, staging_rows), incremental_staging);
  ExpectDimensionMatchesOltp();

  // A truncate, then new sign-ups: everyone before it becomes a tombstone.
  auto oltp = Connect(oltp_);
  ASSERT_TRUE(oltp.Exec("truncate clientes_clube").ok());
  Generate({"--rate", "200", "--duration", "1", "--delete-share", "0"});
  CdcOnce();
  r = Transform("run");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ExpectDimensionMatchesOltp();
  EXPECT_GT(ScalarInt(wh, "select count(*) from marts.dim_clientes_clube where _deleted"), 2000);

  // A full refresh gives the same live dimension.
  auto before = Dimension();
  r = RunPdv({"transform", "run", "--full-refresh", "--warehouse-url", warehouse_});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Dimension(), before);
  // RAW, just written, is fresh by the platform project's own declaration.
  r = RunPdv({"transform", "source", "freshness", "--warehouse-url", warehouse_});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("PASS freshness of raw.clientes_clube"), std::string::npos) << r.output;
}

TEST_F(PlatformModelsTest, WatchFollowsCdcAndNotifiesTheCache) {
  Generate({"--initial", "500"});
  CdcOnce();
  auto listener = Connect(warehouse_);
  PdvProcess watch({"transform", "watch", "--warehouse-url", warehouse_},
                   dir_->path() / "watch.log");
  // The first catch-up run creates the dimension.
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline && Dimension().size() != 500)
    std::this_thread::sleep_for(100ms);
  ASSERT_EQ(Dimension().size(), 500u) << watch.Output();
  ASSERT_TRUE(listener.Exec("LISTEN pdv_dim").ok());
  PdvProcess cdc({"cdc", "--oltp-url", oltp_, "--warehouse-url", warehouse_, "--slot", slot_},
                 dir_->path() / "cdc.log");
  Generate({"--rate", "300", "--duration", "2", "--delete-share", "0.1"});
  deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline && Dimension() != Expected()) {
    std::this_thread::sleep_for(100ms);
  }
  ExpectDimensionMatchesOltp();
  // The cache stage was notified.
  ASSERT_GE(PQconsumeInput(listener.raw()), 1);
  PGnotify* n = PQnotifies(listener.raw());
  ASSERT_NE(n, nullptr);
  PQfreemem(n);
  cdc.Signal(SIGTERM);
  EXPECT_EQ(cdc.Wait(30s), 0);
  watch.Signal(SIGTERM);
  EXPECT_EQ(watch.Wait(30s), 0) << watch.Output();
}

// Issue 13: two `transform watch` on one warehouse: one runs the models, the other says
// it is a standby. The active one is SIGKILLed; the standby takes the lease (token 2) and
// the changes that follow reach the dimension through it.
TEST_F(PlatformModelsTest, WatchHasOneActiveInstanceAndAStandbyTakesOver) {
  Generate({"--initial", "300"});
  CdcOnce();
  std::vector<std::string> args = {"transform", "watch", "--warehouse-url", warehouse_};
  PdvProcess first(args, dir_->path() / "first.log");
  ASSERT_TRUE(WaitFor(30s, [&] { return Dimension().size() == 300; })) << first.Output();
  PdvProcess second(args, dir_->path() / "second.log");
  ASSERT_TRUE(WaitFor(30s, [&] {
    return second.Output().find("event=transform_standby") != std::string::npos;
  })) << second.Output();
  EXPECT_EQ(second.Output().find("transform_run"), std::string::npos);
  auto killed = std::chrono::steady_clock::now();
  first.Signal(SIGKILL);
  first.Wait(10s);
  ASSERT_TRUE(WaitFor(30s, [&] {
    return second.Output().find("event=transform_active") != std::string::npos;
  })) << second.Output();
  std::cout << "transform: the standby took the lease "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count()
            << " s after the active one was killed (TTL 3 s)\n";
  PdvProcess cdc({"cdc", "--oltp-url", oltp_, "--warehouse-url", warehouse_, "--slot", slot_,
                  "--metrics-listen", "127.0.0.1:0"},
                 dir_->path() / "cdc.log");
  Generate({"--rate", "200", "--duration", "2", "--delete-share", "0.1"});
  ASSERT_TRUE(WaitFor(60s, [&] { return Dimension() == Expected(); })) << second.Output();
  ExpectDimensionMatchesOltp();
  EXPECT_NE(second.Output().find("event=transform_active"), std::string::npos);
  EXPECT_NE(second.Output().find("lease_token=2"), std::string::npos) << second.Output();
  cdc.Signal(SIGTERM);
  EXPECT_EQ(cdc.Wait(30s), 0);
  second.Signal(SIGTERM);
  EXPECT_EQ(second.Wait(30s), 0) << second.Output();
}

// Issue 13: RAW grows while a staging run is between its pre-hook (which removes deleted
// customers) and its main query. Under READ COMMITTED each statement sees its own
// snapshot: the main query saw a delete and a later update the pre-hook had not, moved
// the watermark past the delete, and the deleted customer stayed live for good. The test
// makes that moment happen: a row lock holds the pre-hook's delete while cdc commits.
TEST_F(PlatformModelsTest, StagingMissesNoDeleteCommittedWhileARunIsUnderWay) {
  Generate({"--initial", "300"});
  CdcOnce();
  ASSERT_EQ(Transform("run").exit_code, 0);
  auto oltp = Connect(oltp_);
  auto ids = Lines(Scalar(oltp,
                          "select string_agg(cliente_id::text, E'\\n') from "
                          "(select cliente_id from clientes_clube order by cliente_id "
                          "limit 3) t"));
  ASSERT_EQ(ids.size(), 3u);
  const std::string& held = ids[0];     // deleted before the run: the pre-hook deletes it
  const std::string& deleted = ids[1];  // deleted while the run is under way
  const std::string& updated = ids[2];  // updated after that, in the same cdc batch
  ASSERT_TRUE(oltp.ExecParams("delete from clientes_clube where cliente_id = $1", {held}).ok());
  CdcOnce();

  auto locker = Connect(warehouse_);
  ASSERT_TRUE(locker.Exec("begin").ok());
  ASSERT_TRUE(locker
                  .ExecParams("select 1 from staging.stg_clientes_clube where cliente_id = $1 "
                              "for update",
                              {held})
                  .ok());
  PdvProcess run(
      {"transform", "run", "--select", "stg_clientes_clube", "--warehouse-url", warehouse_},
      dir_->path() / "run.log");
  auto observer = Connect(warehouse_);
  ASSERT_TRUE(WaitFor(30s, [&] {
    return ScalarInt(observer,
                     "select count(*) from pg_stat_activity where wait_event_type = 'Lock' "
                     "and query like '%stg_clientes_clube%'") == 1;
  })) << run.Output();
  ASSERT_TRUE(oltp.ExecParams("delete from clientes_clube where cliente_id = $1", {deleted}).ok());
  ASSERT_TRUE(oltp.ExecParams("update clientes_clube set telefone = '11999990000', "
                              "ultima_atualizacao = now() where cliente_id = $1",
                              {updated})
                  .ok());
  CdcOnce();
  ASSERT_TRUE(locker.Exec("rollback").ok());
  EXPECT_EQ(run.Wait(60s), 0) << run.Output();

  // The next runs catch up with whatever that run left for them.
  auto r = Transform("run");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto wh = Connect(warehouse_);
  for (const std::string& gone : {held, deleted}) {
    EXPECT_EQ(ScalarInt(wh, "select count(*) from staging.stg_clientes_clube where cliente_id = '" +
                                gone + "'"),
              0)
        << gone << " was deleted in RAW but is still live in staging";
  }
  EXPECT_EQ(Scalar(wh, "select telefone from staging.stg_clientes_clube where cliente_id = '" +
                           updated + "'"),
            "11999990000");
  ExpectDimensionMatchesOltp();
}

// The adapter seam (leveldb's EnvWrapper): an adapter that wraps the real PostgreSQL one,
// sees every statement of a run, and fails the commit of the transaction that builds one
// chosen relation. The runner reaches the warehouse only through it: that node lands
// nothing (the guard rolls it back), its dependants are skipped, the rest is built.
class CommitFaultAdapter final : public transform::Adapter {
 public:
  CommitFaultAdapter(transform::Adapter& inner, std::string fail_relation)
      : inner_(inner), fail_relation_(std::move(fail_relation)) {}
  int statements = 0;
  int failed_commits = 0;

  std::string Type() const override { return inner_.Type(); }
  Result<std::unique_ptr<transform::Adapter>> Clone() override {
    return Status::Error("one thread in this test");
  }
  transform::StatementResult Execute(const std::string& sql) override {
    ++statements;
    if (in_transaction_ && sql.find(fail_relation_) != std::string::npos) poisoned_ = true;
    return inner_.Execute(sql);
  }
  Result<transform::QueryResult> Query(const std::string& sql) override {
    ++statements;
    return inner_.Query(sql);
  }
  Result<TextRows> QueryText(const std::string& sql) override { return inner_.QueryText(sql); }
  Status LoadCsv(const transform::RelationRef& r, const std::vector<std::string>& c,
                 std::string_view csv) override {
    return inner_.LoadCsv(r, c, csv);
  }
  Status BeginTransaction(const std::string& begin_sql) override {
    in_transaction_ = true;
    poisoned_ = false;
    return inner_.BeginTransaction(begin_sql);
  }
  Status CommitTransaction(const std::string& commit_sql) override {
    in_transaction_ = false;
    if (poisoned_) {
      ++failed_commits;
      inner_.RollbackTransaction();
      return Status::Error("injected: the commit failed");
    }
    return inner_.CommitTransaction(commit_sql);
  }
  void RollbackTransaction() override {
    in_transaction_ = false;
    inner_.RollbackTransaction();
  }
  bool ConnectionLost(const Status& s) const override { return inner_.ConnectionLost(s); }
  transform::RelationKind ExistingKind(const std::string& s, const std::string& n) override {
    return inner_.ExistingKind(s, n);
  }
  Result<transform::RelationKind> LookUpRelation(const std::string& s,
                                                 const std::string& n) override {
    return inner_.LookUpRelation(s, n);
  }
  Status CacheSchemas(const std::vector<std::string>& s) override { return inner_.CacheSchemas(s); }
  void CacheRelation(const std::string& s, const std::string& n,
                     transform::RelationKind k) override {
    inner_.CacheRelation(s, n, k);
  }
  Result<std::vector<transform::RelationRef>> DependentViews(
      const transform::RelationRef& r) override {
    return inner_.DependentViews(r);
  }
  Result<std::vector<transform::CatalogRelation>> Catalog(
      const std::vector<std::string>& s) override {
    return inner_.Catalog(s);
  }
  Result<std::vector<transform::TypedColumn>> ColumnsOf(const std::string& s,
                                                        const std::string& n) override {
    return inner_.ColumnsOf(s, n);
  }
  std::string Quote(std::string_view i) const override { return inner_.Quote(i); }
  std::string SeedType(transform::SeedColumnType t) const override { return inner_.SeedType(t); }
  std::string CreateSchemaSql(const std::string& s) const override {
    return inner_.CreateSchemaSql(s);
  }
  std::string TruncateTableSql(const transform::RelationRef& r) const override {
    return inner_.TruncateTableSql(r);
  }
  std::vector<std::string> ReplaceRelationSql(const transform::RelationRef& r,
                                              const std::string& sql, transform::RelationKind b,
                                              transform::RelationKind e,
                                              const nlohmann::json& i) const override {
    return inner_.ReplaceRelationSql(r, sql, b, e, i);
  }
  std::vector<std::string> IncrementalSql(const transform::RelationRef& r, const std::string& sql,
                                          const std::string& s, const std::vector<std::string>& k,
                                          const std::vector<std::string>& c,
                                          std::string* e) const override {
    return inner_.IncrementalSql(r, sql, s, k, c, e);
  }
  std::string CreateTableSql(const transform::RelationRef& r,
                             const std::vector<transform::TypedColumn>& c) const override {
    return inner_.CreateTableSql(r, c);
  }
  std::vector<std::string> SwapInSql(const transform::RelationRef& l,
                                     const transform::RelationRef& t,
                                     transform::RelationKind e) const override {
    return inner_.SwapInSql(l, t, e);
  }
  std::string TestQuerySql(const std::string& c, const std::string& f, const std::string& w,
                           const std::string& e) const override {
    return inner_.TestQuerySql(c, f, w, e);
  }
  std::string NowSql() const override { return inner_.NowSql(); }
  std::vector<std::string> SnapshotCreateSql(const transform::RelationRef& r,
                                             const std::string& sql,
                                             const transform::SnapshotConfig& c,
                                             const std::string& now) const override {
    return inner_.SnapshotCreateSql(r, sql, c, now);
  }
  std::string SnapshotStageSql(const std::string& sql) const override {
    return inner_.SnapshotStageSql(sql);
  }
  std::vector<std::string> SnapshotMergeSql(const transform::RelationRef& r,
                                            const transform::SnapshotConfig& c,
                                            const std::vector<std::string>& cols,
                                            const std::string& now) const override {
    return inner_.SnapshotMergeSql(r, c, cols, now);
  }

 private:
  transform::Adapter& inner_;
  std::string fail_relation_;
  bool in_transaction_ = false;
  bool poisoned_ = false;
};

TEST_F(TransformTest, TheRunnerReachesTheWarehouseOnlyThroughItsAdapter) {
  auto project = transform::LoadProject({.project_dir = project_.string()});
  ASSERT_TRUE(project.ok()) << project.message();
  auto graph = transform::Graph::Build(*project);
  ASSERT_TRUE(graph.ok()) << graph.message();
  auto conn = pg::Connection::Connect(Url());
  ASSERT_TRUE(conn.ok()) << conn.message();
  transform::PostgresAdapter postgres(*conn, project->target.conninfo);
  CommitFaultAdapter adapter(postgres, "customer_totals");
  std::FILE* out = std::tmpfile();
  transform::TransformOptions options{.command = "build", .out = out};
  transform::Runner runner(*project, *graph, &adapter, options);
  std::set<std::string> all;
  for (const auto& [id, node] : project->nodes) {
    if (node.resource_type != transform::NodeType::kSource &&
        !(node.resource_type == transform::NodeType::kModel &&
          node.materialized() == "ephemeral")) {
      all.insert(id);
    }
  }
  transform::RunSummary summary = runner.Run("build", all);
  std::fclose(out);
  EXPECT_EQ(adapter.failed_commits, 1);
  EXPECT_GT(adapter.statements, 10);
  EXPECT_GE(summary.error, 1);
  EXPECT_GE(summary.skip, 1) << "customer_totals' tests and dependants are skipped";
  EXPECT_GT(summary.pass, 5);
  auto check = Connect(Url());
  EXPECT_EQ(ScalarInt(check, "select count(*) from pg_class where relname = 'customer_totals'"), 0)
      << "a failed commit landed nothing";
  EXPECT_EQ(ScalarInt(check, "select count(*) from analytics_raw.raw_orders"), 4);
  // The relation cache: what was built is known without the catalog; a relation dropped
  // behind the adapter's back is still cached, and LookUpRelation refreshes it.
  EXPECT_EQ(postgres.ExistingKind("analytics_raw", "raw_orders"), transform::RelationKind::kTable);
  ASSERT_TRUE(check.Exec("drop table analytics_raw.raw_orders cascade").ok());
  EXPECT_EQ(postgres.ExistingKind("analytics_raw", "raw_orders"), transform::RelationKind::kTable);
  auto fresh = postgres.LookUpRelation("analytics_raw", "raw_orders");
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(*fresh, transform::RelationKind::kNone);
  EXPECT_EQ(postgres.ExistingKind("analytics_raw", "raw_orders"), transform::RelationKind::kNone);
}

}  // namespace
}  // namespace pdv::testing
