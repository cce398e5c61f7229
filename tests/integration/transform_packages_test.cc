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
      "[[1, \"a\"], [2, \"b\"]]|2|t|t");
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

// Every file under `dir` (target/, dbt_packages/<it>/.git, ...), as one text.
std::string AllFiles(const fs::path& dir) {
  std::string all;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) all += e.path().string() + "\n" + ReadFile(e.path()) + "\n";
  }
  return all;
}

// Issue 30: a package, transitive or not, reads none of the platform's PDV_* variables:
// not in its packages.yml (a git URL would carry the key to its author's server, and show
// it in every error), not in its models, not even when the operator declares one.
TEST_F(TransformPackagesTest, AHostilePackageReadsNoPlatformSecret) {
  const std::string cpf_key = "hostile-test-cpf-key-5551";
  const std::string warehouse_password = "hostile-test-wh-pass-5552";
  ::setenv("PDV_CPF_KEY", cpf_key.c_str(), 1);
  ::setenv("PDV_WAREHOUSE_URL",
           ("postgresql://pdv:" + warehouse_password + "@127.0.0.1:1/warehouse").c_str(), 1);
  CopyBeside("dbt_packages/fixture_hostile", "fixture_hostile");
  Write("packages.yml", ReadFile(project_ / "packages.yml") + "  - local: ../fixture_hostile\n");
  auto deps = RunPdv(
      {"transform", "deps", "--project-dir", project_.string(), "--packages-dir", hub_.string()});
  EXPECT_NE(deps.exit_code, 0) << deps.output;
  EXPECT_NE(deps.output.find("dbt_packages/fixture_hostile: packages.yml:3: "
                             "env_var('PDV_CPF_KEY'): PDV_* variables are the platform's"),
            std::string::npos)
      << deps.output;
  EXPECT_EQ(deps.output.find(cpf_key), std::string::npos) << deps.output;

  fs::remove(dir_->path() / "fixture_hostile/packages.yml");
  deps = RunPdv(
      {"transform", "deps", "--project-dir", project_.string(), "--packages-dir", hub_.string()});
  ASSERT_EQ(deps.exit_code, 0) << deps.output;
  // Its models, one at a time: each attempt a compile error naming the file; the value
  // nowhere.
  fs::path models = dir_->path() / "fixture_hostile/models";
  fs::path stash = dir_->path() / "stash";
  fs::rename(models, stash);
  fs::create_directories(models);
  auto hostile_model = [&](const std::string& name, std::vector<std::string> args,
                           const std::string& error) {
    fs::copy_file(stash / name, models / name);
    args.insert(args.begin(), "build");
    auto build = Dbt(args);
    EXPECT_NE(build.exit_code, 0);
    EXPECT_NE(build.output.find(error), std::string::npos) << build.output;
    for (const std::string& secret : {cpf_key, warehouse_password, pg_->password()}) {
      EXPECT_EQ(build.output.find(secret), std::string::npos) << build.output;
    }
    fs::remove(models / name);
  };
  hostile_model("steal_key.sql", {},
                "dbt_packages/fixture_hostile/models/steal_key.sql:1: env_var('PDV_CPF_KEY'): "
                "PDV_* variables are the platform's");
  hostile_model("steal_secret.sql", {},
                "steal_secret.sql:1: env_var('DBT_ENV_SECRET_SHOP_PG_PASSWORD'): Secret env vars "
                "are allowed only in profiles.yml or packages.yml");
  hostile_model("steal_declared.sql", {"--env-var", "PDV_WAREHOUSE_URL"},
                "--env-var PDV_WAREHOUSE_URL: a secret cannot be made readable");
  hostile_model("steal_declared.sql", {},
                "steal_declared.sql:1: env_var('PDV_WAREHOUSE_URL'): PDV_* variables");
  auto build = Dbt({"build"});
  EXPECT_EQ(build.exit_code, 0) << build.output;
  std::string written = AllFiles(project_ / "target");
  for (const std::string& secret : {cpf_key, warehouse_password, pg_->password()}) {
    EXPECT_EQ(written.find(secret), std::string::npos) << secret;
  }
  ::unsetenv("PDV_CPF_KEY");
  ::unsetenv("PDV_WAREHOUSE_URL");
}

// Issue 30: a DBT_ENV_SECRET_* value packages.yml may read (a git token) or that reaches a
// model some other way (--vars) is shown as ***** in every line, error and file the runner
// writes, while the URL and the SQL still use the real value.
TEST_F(TransformPackagesTest, DbtSecretsAreScrubbedFromOutputErrorsAndEveryFileWritten) {
  const std::string token = "ghp-test-token-7771";
  ::setenv("DBT_ENV_SECRET_GIT_TOKEN", token.c_str(), 1);
  // The repository's path holds the token, as an https URL would: it must reach git.
  fs::path repos = dir_->path() / "repos";
  fs::create_directories(repos / token);
  fs::rename(repos / "fixture_dates", repos / token / "fixture_dates");
  ::setenv("FIXTURE_REPOS", repos.c_str(), 1);
  std::string yml = ReadFile(project_ / "packages.yml");
  yml.replace(yml.find("{{ env_var('FIXTURE_DATES_GIT') }}"),
              std::string("{{ env_var('FIXTURE_DATES_GIT') }}").size(),
              "{{ env_var('FIXTURE_REPOS') }}/{{ env_var('DBT_ENV_SECRET_GIT_TOKEN') "
              "}}/fixture_dates");
  std::string wrong = yml;
  Write("packages.yml", wrong.replace(wrong.find("v1.0.0"), 6, "v9.9.9"));
  auto bad = RunPdv(
      {"transform", "deps", "--project-dir", project_.string(), "--packages-dir", hub_.string()});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("packages.yml:3: "), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("/*****/fixture_dates has no revision 'v9.9.9'"), std::string::npos)
      << bad.output;
  EXPECT_EQ(bad.output.find(token), std::string::npos) << bad.output;

  Write("packages.yml", yml);
  auto deps = RunPdv(
      {"transform", "deps", "--project-dir", project_.string(), "--packages-dir", hub_.string()});
  ASSERT_EQ(deps.exit_code, 0) << deps.output;
  EXPECT_NE(deps.output.find("Installed fixture_dates (git:" + repos.string() +
                             "/*****/fixture_dates @ "),
            std::string::npos)
      << deps.output;
  EXPECT_EQ(deps.output.find(token), std::string::npos) << deps.output;
  EXPECT_TRUE(fs::exists(project_ / "dbt_packages/fixture_dates/macros/dates.sql"));
  // The lock file and the clone's remote (.git/config) keep the scrubbed URL.
  EXPECT_EQ(ReadFile(project_ / "package-lock.yml").find(token), std::string::npos);
  EXPECT_NE(ReadFile(project_ / "package-lock.yml").find("/*****/fixture_dates"),
            std::string::npos);
  EXPECT_EQ(AllFiles(project_ / "dbt_packages/fixture_dates").find(token), std::string::npos);

  // A model that gets the value through --vars, logs it and selects it.
  Write("models/leaky.sql",
        "{{ log('leaky sees ' ~ var('leak', ''), info=True) }}"
        "select '{{ var(\"leak\", \"\") }}'::text as v\n");
  auto build = Dbt({"build", "--vars", "{leak: " + token + "}"});
  ASSERT_EQ(build.exit_code, 0) << build.output;
  EXPECT_NE(build.output.find("leaky sees *****"), std::string::npos) << build.output;
  EXPECT_EQ(build.output.find(token), std::string::npos) << build.output;
  std::string written = AllFiles(project_ / "target");
  EXPECT_EQ(written.find(token), std::string::npos);
  EXPECT_EQ(written.find(pg_->password()), std::string::npos);
  EXPECT_NE(ReadFile(project_ / "target/compiled/pkg_shop/models/leaky.sql").find("'*****'"),
            std::string::npos);
  auto conn = Connect(Url());
  EXPECT_EQ(Scalar(conn, "select v from analytics.leaky"), token);  // the SQL had the value
  ::unsetenv("DBT_ENV_SECRET_GIT_TOKEN");
}

}  // namespace
}  // namespace pdv::testing
