// dbt unit tests with `pdv transform test` and `build`, against a real PostgreSQL
// (tests/fixtures/dbt_unit): given rows in each format, vars and macro overrides, `this`
// for an incremental branch; a failing unit test shows the differing rows and stops its
// model in build.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "localsvc/local_postgres.h"
#include "test_support.h"

namespace pdv::testing {
namespace {

namespace fs = std::filesystem;

class TransformUnitTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto pg = localsvc::LocalPostgres::Start({});
    ASSERT_TRUE(pg.ok()) << pg.message();
    pg_ = pg->release();
  }
  static void TearDownTestSuite() { delete pg_; }

  void SetUp() override {
    static std::atomic<int> counter{0};
    db_ = "unit_" + std::to_string(counter++);
    ASSERT_TRUE(pg_->CreateDatabase(db_).ok());
    auto dir = localsvc::ScratchDir::Create("pdv-test-unit");
    ASSERT_TRUE(dir.ok()) << dir.message();
    dir_.emplace(std::move(*dir));
    project_ = dir_->path() / "unit";
    fs::copy(fs::path(PDV_SOURCE_DIR) / "tests/fixtures/dbt_unit", project_,
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

  static localsvc::LocalPostgres* pg_;
  std::string db_;
  std::optional<localsvc::ScratchDir> dir_;
  fs::path project_;
};

localsvc::LocalPostgres* TransformUnitTest::pg_ = nullptr;

TEST_F(TransformUnitTest, BuildRunsUnitTestsBeforeTheirModel) {
  auto r = Dbt({"build"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("PASS=6 WARN=0 ERROR=0 SKIP=0 TOTAL=6"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("PASS totals_and_vip_from_dicts"), std::string::npos) << r.output;
  // Unit tests first, then the model they test.
  EXPECT_LT(r.output.find("PASS incremental_branch_reads_this"),
            r.output.find("OK created sql incremental model"))
      << r.output;
  // `test` runs them too, the model built or not.
  auto t = Dbt({"test", "--select", "customer_totals"});
  ASSERT_EQ(t.exit_code, 0) << t.output;
  EXPECT_NE(t.output.find("PASS=3 WARN=0 ERROR=0 SKIP=0 TOTAL=3"), std::string::npos) << t.output;
}

TEST_F(TransformUnitTest, AFailingUnitTestShowsTheRowsAndStopsItsModel) {
  std::string yml = ReadFile(project_ / "models/schema.yml");
  yml.replace(yml.find("- {customer_id: 1, total: 100, vip: true}"),
              std::string("- {customer_id: 1, total: 100, vip: true}").size(),
              "- {customer_id: 1, total: 99, vip: true}");
  std::ofstream(project_ / "models/schema.yml") << yml;
  auto r = Dbt({"build"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("unit test totals_and_vip_from_dicts of customer_totals: 2 rows differ"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("- expected, missing:  customer_id=1, total=99, vip=t"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("+ actual, unexpected: customer_id=1, total=100, vip=t"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("SKIP relation analytics.customer_totals"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("models/schema.yml:3: unit test totals_and_vip_from_dicts"),
            std::string::npos)
      << r.output;
}

TEST_F(TransformUnitTest, AGivenColumnTheInputLacksIsNamed) {
  std::string yml = ReadFile(project_ / "models/schema.yml");
  yml.replace(yml.find("- {id: 3}"), 9, "- {id: 3, nickname: x}");
  std::ofstream(project_ / "models/schema.yml") << yml;
  auto r = Dbt({"build"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("given ref('raw_customers'): column 'nickname' is not in the relation"),
            std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace pdv::testing
