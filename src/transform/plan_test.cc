// The plan of a run, from a fixture project's graph, against golden files (no database).
// PDV_UPDATE_GOLDEN=1 rewrites the golden files from what the plan is now.

#include "transform/plan.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "transform/graph.h"
#include "transform/project.h"

namespace pdv::transform {
namespace {

namespace fs = std::filesystem;

// The plan of `command` over every node of the project `load` loads, as FormatPlan prints it.
std::string PlanText(const LoadOptions& load, const std::string& command) {
  auto project = LoadProject(load);
  EXPECT_TRUE(project.ok()) << project.message();
  if (!project.ok()) return "";
  auto graph = Graph::Build(*project);
  EXPECT_TRUE(graph.ok()) << graph.message();
  if (!graph.ok()) return "";
  auto selected = graph->Select({}, {}, /*with_tests=*/true);
  EXPECT_TRUE(selected.ok()) << selected.message();
  if (!selected.ok()) return "";
  return FormatPlan(MakePlan(*project, *graph, NodesForCommand(*project, command, *selected)));
}

void ExpectGolden(const std::string& actual, const std::string& name) {
  fs::path golden = fs::path(PDV_GOLDEN_DIR) / "transform" / name;
  if (std::getenv("PDV_UPDATE_GOLDEN")) {
    std::ofstream(golden) << actual;
    return;
  }
  std::ifstream in(golden);
  ASSERT_TRUE(in) << golden << " is missing (PDV_UPDATE_GOLDEN=1 writes it)";
  std::stringstream expected;
  expected << in.rdbuf();
  EXPECT_EQ(actual, expected.str()) << "PDV_UPDATE_GOLDEN=1 rewrites " << golden;
}

// The fixtures' profiles.yml read these; nothing connects.
void SetShopEnv() {
  setenv("SHOP_PG_HOST", "127.0.0.1", 1);
  setenv("SHOP_PG_PORT", "5999", 1);
  setenv("SHOP_PG_DB", "shop", 1);
}

TEST(PlanTest, ShopBuildMatchesGolden) {
  SetShopEnv();
  LoadOptions load{.project_dir = std::string(PDV_FIXTURES) + "/dbt_shop"};
  ExpectGolden(PlanText(load, "build"), "plan_shop_build.txt");
  ExpectGolden(PlanText(load, "run"), "plan_shop_run.txt");
}

TEST(PlanTest, UnitTestsBuildMatchesGolden) {
  SetShopEnv();
  LoadOptions load{.project_dir = std::string(PDV_FIXTURES) + "/dbt_unit"};
  ExpectGolden(PlanText(load, "build"), "plan_unit_build.txt");
}

TEST(PlanTest, PlatformBuildMatchesGolden) {
  LoadOptions load{.project_dir = std::string(PDV_FIXTURES) + "/../../transform",
                   .platform_warehouse_url = "postgresql://pdv@127.0.0.1:5999/warehouse"};
  ExpectGolden(PlanText(load, "build"), "plan_platform_build.txt");
}

}  // namespace
}  // namespace pdv::transform
