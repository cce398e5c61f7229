// dbt unit tests with `pdv transform test` and `build`, against a real PostgreSQL
// (tests/fixtures/dbt_unit): given rows in each format, vars and macro overrides, `this`
// for an incremental branch; a failing unit test shows the differing rows and stops its
// model in build.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "dbt_project_test.h"

namespace pdv::testing {
namespace {

namespace fs = std::filesystem;

class TransformUnitTest : public DbtProjectTest {
 protected:
  void SetUp() override { SetUpProject("dbt_unit", "unit"); }
};

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
