// The commands a CI runs, on a real PostgreSQL (tests/fixtures/dbt_commands, with its local
// package dbt_commands_pkg beside it): debug, deps with dbt's global flags, parse, show,
// run-operation, retry and clean, each with an error case and a second run; an unknown
// `pdv transform` command names itself; hub packages from --packages-dir are versioned by
// their releases, never by their dbt_project.yml `version:`.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "dbt_project_test.h"
#include "pg/connection.h"

namespace pdv::testing {
namespace {

namespace fs = std::filesystem;

class TransformCommandsTest : public DbtProjectTest {
 protected:
  void SetUp() override {
    SetUpProject("dbt_commands", "cmds");
    CopyBeside("dbt_commands_pkg", "cmds_pkg");
  }

  // One value of the first row of `sql` on the test's database ("" when no row, "NULL").
  std::string Scalar(const std::string& sql) {
    auto conn = pg::Connection::Connect(Url());
    EXPECT_TRUE(conn.ok()) << conn.message();
    if (!conn.ok()) return "";
    auto r = conn->Exec(sql);
    EXPECT_TRUE(r.ok()) << r.message();
    if (!r.ok() || r->rows() == 0) return "";
    return r->is_null(0, 0) ? "NULL" : r->str(0, 0);
  }
  void Sql(const std::string& sql) {
    auto conn = pg::Connection::Connect(Url());
    ASSERT_TRUE(conn.ok()) << conn.message();
    Exec(*conn, sql);
  }
  // The unique ids and statuses of target/run_results.json.
  std::map<std::string, std::string> RunResults() {
    std::ifstream in(project_ / "target" / "run_results.json");
    auto j = nlohmann::json::parse(in);
    std::map<std::string, std::string> out;
    for (const auto& r : j["results"]) out[r["unique_id"]] = r["status"];
    return out;
  }
  static bool Contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
  }
};

TEST_F(TransformCommandsTest, UnknownCommandNamesItself) {
  auto r = RunPdv({"transform", "frob"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "unknown command 'frob'")) << r.output;
  EXPECT_FALSE(Contains(r.output, "A subcommand is required")) << r.output;
  auto none = RunPdv({"transform"});
  EXPECT_EQ(none.exit_code, 2) << none.output;
  EXPECT_TRUE(Contains(none.output, "a command is required")) << none.output;
}

TEST_F(TransformCommandsTest, DebugPassesTwiceAndNamesWhatFails) {
  // Before deps, as CI runs it: debug reads no package.
  for (int run = 0; run < 2; ++run) {
    auto r = Dbt({"debug"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(Contains(r.output, "profiles.yml file [OK found and valid]")) << r.output;
    EXPECT_TRUE(Contains(r.output, "Connection test: [OK connection ok]")) << r.output;
    EXPECT_TRUE(Contains(r.output, "All checks passed!")) << r.output;
  }
  // An unreachable target: the connection error, its password scrubbed.
  auto down = Dbt({"debug", "--target", "unreachable"});
  EXPECT_EQ(down.exit_code, 1) << down.output;
  EXPECT_TRUE(Contains(down.output, "Connection test: [ERROR]")) << down.output;
  EXPECT_TRUE(Contains(down.output, "target 'unreachable'")) << down.output;
  EXPECT_FALSE(Contains(down.output, "All checks passed!")) << down.output;
  EXPECT_FALSE(Contains(down.output, pg_->password())) << down.output;
  // A broken profiles.yml: its file and line.
  Write("profiles.yml", "cmds:\n  target: dev\n  outputs:\n    dev: [unclosed\n");
  auto bad = Dbt({"debug"});
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_TRUE(Contains(bad.output, "profiles.yml file [ERROR invalid]")) << bad.output;
  EXPECT_TRUE(Contains(bad.output, "profiles.yml:")) << bad.output;
}

TEST_F(TransformCommandsTest, DepsTakesDbtsGlobalFlagsTwice) {
  for (int run = 0; run < 2; ++run) {
    auto r = Dbt({"deps", "--profiles-dir", project_.string(), "--target", "dev"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(fs::exists(project_ / "dbt_packages" / "cmds_pkg" / "dbt_project.yml"));
  }
}

TEST_F(TransformCommandsTest, HubPackagesAreVersionedByTheirReleases) {
  fs::path hub = dir_->path() / "hub";
  // A plain copy (as `git archive` extracts it): version '0.1.0' in its dbt_project.yml,
  // like dbt_utils', is not its release; it is installed for any range.
  fs::create_directories(hub / "acme" / "plain" / "macros");
  std::ofstream(hub / "acme" / "plain" / "dbt_project.yml")
      << "name: plain\nversion: '0.1.0'\nconfig-version: 2\n";
  // A folder of releases, as the hub serves them: the highest in range is installed.
  for (const char* v : {"1.0.0", "1.2.0", "2.0.0"}) {
    fs::create_directories(hub / "acme" / "released" / v);
    std::ofstream(hub / "acme" / "released" / v / "dbt_project.yml")
        << "name: released\nversion: '0.1.0'\nconfig-version: 2\n";
    std::ofstream(hub / "acme" / "released" / v / "which.txt") << v;
  }
  Write("packages.yml",
        "packages:\n  - local: ../cmds_pkg\n  - package: acme/plain\n    version: [\">=1.0.0\", "
        "\"<2.0.0\"]\n  - package: acme/released\n    version: [\">=1.0.0\", \"<2.0.0\"]\n");
  for (int run = 0; run < 2; ++run) {
    auto r = Dbt({"deps", "--packages-dir", hub.string()});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(fs::exists(project_ / "dbt_packages" / "plain" / "dbt_project.yml"));
    std::ifstream which(project_ / "dbt_packages" / "released" / "which.txt");
    std::string v;
    which >> v;
    EXPECT_EQ(v, "1.2.0");
  }
  // Nothing in range: refused, naming the range and the releases there are.
  Write("packages.yml", "packages:\n  - package: acme/released\n    version: \">=3.0.0\"\n");
  auto none = Dbt({"deps", "--packages-dir", hub.string()});
  EXPECT_EQ(none.exit_code, 1) << none.output;
  EXPECT_TRUE(Contains(none.output, "packages.yml:2")) << none.output;
  EXPECT_TRUE(Contains(none.output, "no release in range '>=3.0.0'")) << none.output;
  EXPECT_TRUE(Contains(none.output, "1.2.0")) << none.output;
  // The earlier install is kept.
  EXPECT_TRUE(fs::exists(project_ / "dbt_packages" / "released"));
}

TEST_F(TransformCommandsTest, ParseWritesTheManifestTwiceAndNamesABadFile) {
  ASSERT_EQ(Dbt({"deps"}).exit_code, 0);
  for (int run = 0; run < 2; ++run) {
    auto r = Dbt({"parse"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    std::ifstream in(project_ / "target" / "manifest.json");
    auto m = nlohmann::json::parse(in);
    EXPECT_TRUE(m["nodes"].contains("model.cmds.team_sizes"));
    EXPECT_TRUE(m["nodes"].contains("seed.cmds.people"));
  }
  Write("models/broken.sql", "select 1\n{% if %}\n");
  auto bad = Dbt({"parse"});
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_TRUE(Contains(bad.output, "models/broken.sql:2")) << bad.output;
}

TEST_F(TransformCommandsTest, ShowPrintsRowsOfANodeAndOfInlineSql) {
  ASSERT_EQ(Dbt({"deps"}).exit_code, 0);
  ASSERT_EQ(Dbt({"seed"}).exit_code, 0);
  ASSERT_EQ(Dbt({"run", "--select", "stg_people"}).exit_code, 0);
  for (int run = 0; run < 2; ++run) {
    // team_sizes was never built: show compiles it and runs the query, writing nothing.
    auto r = Dbt({"show", "--select", "team_sizes"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(Contains(r.output, "Previewing node 'team_sizes':")) << r.output;
    EXPECT_TRUE(Contains(r.output, "| team  | members |")) << r.output;
    EXPECT_TRUE(Contains(r.output, "| blue  |       3 |")) << r.output;
    EXPECT_EQ(Scalar("select count(*) from pg_class where relname = 'team_sizes'"), "0");
  }
  auto two = Dbt(
      {"show", "--inline", "select name from {{ ref('stg_people') }} order by id", "--limit", "2"});
  EXPECT_EQ(two.exit_code, 0) << two.output;
  EXPECT_TRUE(Contains(two.output, "Previewing inline node:")) << two.output;
  EXPECT_TRUE(Contains(two.output, "| Bruno |")) << two.output;
  EXPECT_FALSE(Contains(two.output, "Carla")) << two.output;
  auto all = Dbt({"show", "--select", "people", "--limit", "-1"});
  EXPECT_EQ(all.exit_code, 0) << all.output;
  EXPECT_TRUE(Contains(all.output, "Fabio")) << all.output;
  // Errors: a bad column, an unknown ref, nothing to show.
  auto column = Dbt({"show", "--inline", "select nope from {{ ref('stg_people') }}"});
  EXPECT_EQ(column.exit_code, 1) << column.output;
  EXPECT_TRUE(Contains(column.output, "column \"nope\" does not exist")) << column.output;
  auto ref = Dbt({"show", "--inline", "select * from {{ ref('missing_model') }}"});
  EXPECT_EQ(ref.exit_code, 1) << ref.output;
  EXPECT_TRUE(Contains(ref.output, "missing_model")) << ref.output;
  auto nothing = Dbt({"show"});
  EXPECT_EQ(nothing.exit_code, 1) << nothing.output;
  EXPECT_TRUE(Contains(nothing.output, "--inline")) << nothing.output;
}

TEST_F(TransformCommandsTest, RunOperationRunsMacrosTwiceAndRollsBackAFailure) {
  ASSERT_EQ(Dbt({"deps"}).exit_code, 0);
  Sql("create schema analytics");
  for (int run = 0; run < 2; ++run) {
    auto r = Dbt({"run-operation", "make_marker", "--args", "{name: a, n: 7}"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(Contains(r.output, "made marker a with 7")) << r.output;
    EXPECT_EQ(Scalar("select n from analytics.marker_a"), "7");
    // A package's macro, named with its package.
    auto pkg = Dbt({"run-operation", "cmds_pkg.grant_marker", "--args", "{role_name: bob}"});
    EXPECT_EQ(pkg.exit_code, 0) << pkg.output;
    EXPECT_EQ(Scalar("select count(*) from analytics.pkg_marker where role = 'bob'"),
              std::to_string(run + 1));
  }
  // A failing statement: the error, and the macro's earlier statement rolled back.
  auto failed = Dbt({"run-operation", "half_then_fail"});
  EXPECT_EQ(failed.exit_code, 1) << failed.output;
  EXPECT_TRUE(Contains(failed.output, "macros/operations.sql")) << failed.output;
  EXPECT_TRUE(Contains(failed.output, "no_such_table")) << failed.output;
  EXPECT_EQ(Scalar("select coalesce(to_regclass('analytics.half_done')::text, 'none')"), "none");
  // Unknown macro, unknown package, bad --args: each named.
  auto unknown = Dbt({"run-operation", "frobnicate"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown.output;
  EXPECT_TRUE(Contains(unknown.output, "no macro named 'frobnicate'")) << unknown.output;
  auto package = Dbt({"run-operation", "nopkg.make_marker"});
  EXPECT_EQ(package.exit_code, 1) << package.output;
  EXPECT_TRUE(Contains(package.output, "no package named 'nopkg'")) << package.output;
  auto args = Dbt({"run-operation", "make_marker", "--args", "[1"});
  EXPECT_EQ(args.exit_code, 1) << args.output;
  EXPECT_TRUE(Contains(args.output, "--args")) << args.output;
}

TEST_F(TransformCommandsTest, RetryRerunsWhatErroredOrWasSkipped) {
  ASSERT_EQ(Dbt({"deps"}).exit_code, 0);
  auto none = Dbt({"retry"});  // no previous run
  EXPECT_EQ(none.exit_code, 1) << none.output;
  EXPECT_TRUE(Contains(none.output, "run_results.json")) << none.output;
  auto first = Dbt({"build"});
  EXPECT_EQ(first.exit_code, 1) << first.output;
  EXPECT_EQ(RunResults()["model.cmds.switched"], "error");
  EXPECT_EQ(RunResults()["model.cmds.after_switched"], "skipped");
  // Still failing: the same nodes again, and only them.
  auto again = Dbt({"retry"});
  EXPECT_EQ(again.exit_code, 1) << again.output;
  auto results = RunResults();
  EXPECT_EQ(results.size(), 3u) << again.output;
  EXPECT_EQ(results["model.cmds.switched"], "error");
  EXPECT_FALSE(results.count("model.cmds.team_sizes"));
  // The cause fixed: retry builds them and their test.
  Sql("create schema ext; create table ext.switch as select true as on_off");
  auto fixed = Dbt({"retry"});
  EXPECT_EQ(fixed.exit_code, 0) << fixed.output;
  results = RunResults();
  EXPECT_EQ(results.size(), 3u) << fixed.output;
  EXPECT_EQ(results["model.cmds.switched"], "success");
  EXPECT_EQ(results["model.cmds.after_switched"], "success");
  int tests = 0;
  for (const auto& [id, status] : results) {
    if (id.starts_with("test.cmds.not_null_after_switched_n")) tests += status == "pass";
  }
  EXPECT_EQ(tests, 1) << fixed.output;
  EXPECT_EQ(Scalar("select n from analytics.after_switched"), "6");
  // Nothing left to retry.
  auto done = Dbt({"retry"});
  EXPECT_EQ(done.exit_code, 0) << done.output;
  EXPECT_TRUE(Contains(done.output, "Nothing to do")) << done.output;
  // As dbt retry: the previous invocation's --vars again, unless given anew.
  auto zero = Dbt({"run", "--select", "ratio", "--vars", "{divisor: 0}"});
  EXPECT_EQ(zero.exit_code, 1) << zero.output;
  auto same = Dbt({"retry"});
  EXPECT_EQ(same.exit_code, 1) << same.output;
  EXPECT_TRUE(Contains(same.output, "division by zero")) << same.output;
  auto two = Dbt({"retry", "--vars", "{divisor: 2}"});
  EXPECT_EQ(two.exit_code, 0) << two.output;
  EXPECT_EQ(Scalar("select r from analytics.ratio"), "5");
}

TEST_F(TransformCommandsTest, CleanRemovesItsTargetsTwiceAndRefusesOutsideTheProject) {
  ASSERT_EQ(Dbt({"deps"}).exit_code, 0);
  ASSERT_EQ(Dbt({"parse"}).exit_code, 0);
  fs::create_directories(project_ / "logs");
  for (int run = 0; run < 2; ++run) {
    auto r = Dbt({"clean"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(Contains(r.output, "Finished cleaning all paths.")) << r.output;
    for (const char* gone : {"target", "dbt_packages", "logs"})
      EXPECT_FALSE(fs::exists(project_ / gone)) << gone;
    EXPECT_TRUE(fs::exists(project_ / "models" / "team_sizes.sql"));
  }
  // Outside the project: refused, nothing removed.
  fs::create_directories(project_ / "target");
  fs::create_directories(dir_->path() / "elsewhere");
  Write("dbt_project.yml",
        "name: cmds\nconfig-version: 2\nprofile: cmds\nclean-targets: [target, ../elsewhere]\n");
  auto outside = Dbt({"clean"});
  EXPECT_EQ(outside.exit_code, 1) << outside.output;
  EXPECT_TRUE(Contains(outside.output, "dbt_project.yml:4")) << outside.output;
  EXPECT_TRUE(Contains(outside.output, "../elsewhere")) << outside.output;
  EXPECT_TRUE(fs::exists(project_ / "target"));
  EXPECT_TRUE(fs::exists(dir_->path() / "elsewhere"));
  // A protected path is left, with a line saying so.
  Write("dbt_project.yml",
        "name: cmds\nconfig-version: 2\nprofile: cmds\nclean-targets: [models, target]\n");
  auto guarded = Dbt({"clean"});
  EXPECT_EQ(guarded.exit_code, 0) << guarded.output;
  EXPECT_TRUE(Contains(guarded.output, "not cleaning models because it is protected"))
      << guarded.output;
  EXPECT_TRUE(fs::exists(project_ / "models" / "team_sizes.sql"));
  EXPECT_FALSE(fs::exists(project_ / "target"));
}

}  // namespace
}  // namespace pdv::testing
