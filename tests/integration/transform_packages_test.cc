// dbt packages with `pdv transform`, against a real PostgreSQL: `pdv transform deps`
// installs a local, a git and a hub package (tests/fixtures/dbt_packages, our own fixture
// packages); the project then builds with package macros, models, tests and vars,
// adapter.dispatch with a `dispatch:` override, dbt's cross-database macros and
// {% call statement %}.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "dbt_project_test.h"
#include "localsvc/child_process.h"

namespace pdv::testing {
namespace {

namespace fs = std::filesystem;

class TransformPackagesTest : public DbtProjectTest {
 protected:
  void SetUp() override {
    SetUpProject("dbt_packages/pkg_shop", "pkg_shop");
    CopyBeside("dbt_packages/fixture_utils", "fixture_utils");
    fs::path fixtures = fs::path(PDV_SOURCE_DIR) / "tests/fixtures/dbt_packages";
    // The git package: tag v1.0.0 is the fixture; a later commit on the branch changes
    // month_start to the year's start, so the revision shows in the results.
    fs::path dates = dir_->path() / "repos" / "fixture_dates";
    fs::create_directories(dates.parent_path());
    fs::copy(fixtures / "fixture_dates", dates, fs::copy_options::recursive);
    Git(dates, {"init", "--quiet", "--initial-branch=main"});
    Commit(dates, "v1.0.0");
    Git(dates, {"tag", "v1.0.0"});
    std::ofstream(dates / "macros/dates.sql", std::ios::app)
        << "{% macro part() %}{{ return('year') }}{% endmacro %}\n";
    Commit(dates, "later");
    ::setenv("FIXTURE_DATES_GIT", dates.c_str(), 1);
    // The hub package: a repository with three tagged versions under --packages-dir.
    hub_ = dir_->path() / "hub";
    fs::path audit = hub_ / "fixture-labs" / "fixture_audit";
    fs::create_directories(audit.parent_path());
    fs::copy(fixtures / "fixture_audit", audit, fs::copy_options::recursive);
    Git(audit, {"init", "--quiet", "--initial-branch=main"});
    for (const char* version : {"0.1.0", "0.2.0", "1.0.0"}) {
      std::ofstream(audit / "macros/version.sql")
          << fmt::format("{{% macro audit_version() %}}{}{{% endmacro %}}\n", version);
      Commit(audit, version);
      Git(audit, {"tag", version});
    }
  }

  void Git(const fs::path& repo, std::vector<std::string> args) {
    std::vector<std::string> argv = {"git",
                                     "-C",
                                     repo.string(),
                                     "-c",
                                     "user.name=pdv test",
                                     "-c",
                                     "user.email=test@pdv.invalid"};
    argv.insert(argv.end(), args.begin(), args.end());
    Status s = localsvc::RunCommand({.argv = argv, .log_file = (dir_->path() / "git.log").string()},
                                    std::chrono::seconds(60));
    ASSERT_TRUE(s.ok()) << s.message();
  }
  void Commit(const fs::path& repo, const std::string& message) {
    Git(repo, {"add", "-A"});
    Git(repo, {"commit", "--quiet", "-m", message});
  }

  fs::path hub_;
};

TEST_F(TransformPackagesTest, DepsInstallsEveryKindAndTheProjectBuildsWithThem) {
  // Before deps: one clear line that says what to do.
  auto before = Dbt({"build"});
  EXPECT_NE(before.exit_code, 0);
  EXPECT_NE(before.output.find("packages.yml lists 3 package(s), but only 0 are installed in "
                               "dbt_packages: run `pdv transform deps`"),
            std::string::npos)
      << before.output;

  auto deps = RunPdv(
      {"transform", "deps", "--project-dir", project_.string(), "--packages-dir", hub_.string()});
  ASSERT_EQ(deps.exit_code, 0) << deps.output;
  EXPECT_TRUE(fs::is_symlink(project_ / "dbt_packages/fixture_utils"));
  EXPECT_TRUE(fs::exists(project_ / "dbt_packages/fixture_dates/macros/dates.sql"));
  std::string lock = ReadFile(project_ / "package-lock.yml");
  EXPECT_NE(lock.find("name: fixture_audit"), std::string::npos) << lock;
  EXPECT_NE(lock.find("name: fixture_dates"), std::string::npos) << lock;

  auto build = Dbt({"build"});
  ASSERT_EQ(build.exit_code, 0) << build.output;
  // A seed, three models (one from fixture_utils), four data tests and a singular one.
  EXPECT_NE(build.output.find("PASS=9 WARN=0 ERROR=0 SKIP=0 TOTAL=9"), std::string::npos)
      << build.output;

  auto conn = Connect(Url());
  EXPECT_EQ(Scalar(conn,
                   "select string_agg(concat_ws(':', id, first_name, last_name, greeting, "
                   "signup_month, audit_tag), ' ' order by id) from analytics.customers_keyed"),
            "1:Ana:Silva:Olá, Ana!:2026-01-01:audit-0.2.0 "
            "2:Bruno:Olá, Bruno!:2026-02-01:audit-0.2.0 "
            "3:Carla:Souza:Olá, Carla!:2026-03-01:audit-0.2.0");
  // The package macro's var, called from a root model, follows the node: the root sees
  // neither the package's own var nor the one the root scopes to the package.
  EXPECT_EQ(ScalarInt(conn,
                      "select count(*) from analytics.customers_keyed where customer_key = "
                      "md5('2|<default-null>') and id = 2"),
            1);
  // select_columns() read the seed's columns from the catalog, less the excluded ones.
  EXPECT_EQ(Scalar(conn,
                   "select string_agg(column_name, ',' order by ordinal_position) from "
                   "information_schema.columns where table_name = 'customers_keyed'"),
            "customer_key,greeting,id,first_name,last_name,signup_month,audit_tag");
  // The package's model: in the schema the root gives it, with the package's var and the
  // root's override of another.
  EXPECT_EQ(Scalar(conn,
                   "select string_agg(day || '/' || token, ' ' order by day) from "
                   "analytics_utils.utils_calendar"),
            "2026-12-01/<root-null> 2026-12-02/<root-null> 2026-12-03/<root-null>");

  EXPECT_EQ(
      Scalar(conn,
             "select concat_ws('|', date_trunc_month, dateadd_day, datediff_month, datediff_hour, "
             "datediff_day, last_day_month, last_day_quarter, concat_abc, hash_abc = md5('abc'), "
             "safe_cast_42, split_part_2, replace_banana, right_2, length_6, position_3, escaped, "
             "bool_text, listagg_desc, listagg_limit, any_value_7, bool_or_true, nulls_equal, "
             "array_1234, array_empty, date_20261201, except_1, intersect_0, re_sub, zipped, "
             "from_json, has_invocation_id, graph_has_node) from analytics.cross_db"),
      "2026-03-01 00:00:00|2026-03-02 00:00:00|2|2|10|2026-02-28|2026-03-31|abc|t|42|b|"
      "bonono|ef|6|3|it's|true|c-b-a|a-b|7|t|t|{1,2,3,4}|{}|2026-12-01|1|0|34/12|"
      "[[1,\"a\"],[2,\"b\"]]|2|t|t");
  EXPECT_EQ(Scalar(conn,
                   "select string_agg(column_name || ' ' || data_type, ', ' order by "
                   "ordinal_position) from information_schema.columns where table_name = "
                   "'cross_db' and column_name like 'type_%'"),
            "type_string text, type_bigint bigint, type_numeric numeric, type_timestamp "
            "timestamp without time zone, type_int integer, type_float double precision, "
            "type_boolean boolean");
}

TEST_F(TransformPackagesTest, PackageErrorsNameTheFileAndLine) {
  auto deps = RunPdv(
      {"transform", "deps", "--project-dir", project_.string(), "--packages-dir", hub_.string()});
  ASSERT_EQ(deps.exit_code, 0) << deps.output;

  // A dispatch that finds nothing names the call's file and line.
  Write("models/bad_dispatch.sql",
        "select 1 as x\n-- {{ adapter.dispatch('nothing_here', 'fixture_utils')() }}\n");
  auto r = Dbt({"run", "--select", "bad_dispatch"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("models/bad_dispatch.sql:2: adapter.dispatch: no macro "
                          "postgres__nothing_here or default__nothing_here in pkg_shop, "
                          "fixture_utils"),
            std::string::npos)
      << r.output;
  fs::remove(project_ / "models/bad_dispatch.sql");

  // A test of a package that has no such test.
  Write("models/more.yml",
        "version: 2\nmodels:\n  - name: cross_db\n    data_tests:\n"
        "      - fixture_utils.no_such_test\n");
  r = Dbt({"build"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("models/more.yml:5: unknown data test 'fixture_utils.no_such_test'"),
            std::string::npos)
      << r.output;
  fs::remove(project_ / "models/more.yml");

  // A git revision that does not exist: deps fails, and the installed packages stay.
  std::string yml = ReadFile(project_ / "packages.yml");
  Write("packages.yml", yml.replace(yml.find("v1.0.0"), 6, "v9.9.9"));
  auto bad = RunPdv(
      {"transform", "deps", "--project-dir", project_.string(), "--packages-dir", hub_.string()});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("packages.yml:3: "), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("has no revision 'v9.9.9'"), std::string::npos) << bad.output;
  EXPECT_TRUE(fs::exists(project_ / "dbt_packages/fixture_dates/macros/dates.sql"));

  // A hub range nothing meets.
  Write("packages.yml",
        "packages:\n  - package: fixture-labs/fixture_audit\n"
        "    version: \">=2.0.0\"\n");
  bad = RunPdv(
      {"transform", "deps", "--project-dir", project_.string(), "--packages-dir", hub_.string()});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("packages.yml:2: "), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("has no tagged version in range '>=2.0.0'"), std::string::npos)
      << bad.output;
}

}  // namespace
}  // namespace pdv::testing
