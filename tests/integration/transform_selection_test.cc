// Node selection as dbt does it, on a real PostgreSQL (tests/fixtures/dbt_selection):
// --exclude takes the excluded nodes' data tests and unit tests with it, --select takes
// tests by indirect selection (eager, cautious, buildable, empty), selectors.yml, the
// methods that read the project (test_type, package, file, group, version) and those that
// compare with an earlier run (state, result, source_status). And unit tests as dbt reads
// them: fixture files under tests/fixtures (never singular tests, nor tests/generic),
// config tags/enabled rendered, `rows: []`, macro overrides with a package prefix.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "dbt_project_test.h"
#include "pg/connection.h"

namespace pdv::testing {
namespace {

namespace fs = std::filesystem;

class TransformSelectionTest : public DbtProjectTest {
 protected:
  void SetUp() override { SetUpProject("dbt_selection", "sel"); }

  // `ls` with `args`: the listed names, in order.
  std::vector<std::string> Ls(std::vector<std::string> args) {
    args.insert(args.begin(), "ls");
    auto r = Dbt(args);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    std::vector<std::string> out;
    std::istringstream in(r.output);
    for (std::string line; std::getline(in, line);) {
      if (line.starts_with("sel.") || line.starts_with("source:")) out.push_back(line);
    }
    return out;
  }
  static bool Has(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  }
  // The listed names that start with `prefix`.
  static std::set<std::string> Starting(const std::vector<std::string>& v,
                                        const std::string& prefix) {
    std::set<std::string> out;
    for (const auto& s : v) {
      if (s.starts_with(prefix)) out.insert(s);
    }
    return out;
  }
  void CopyTarget(const fs::path& to) {
    fs::create_directories(to);
    for (const auto& f : {"manifest.json", "run_results.json", "sources.json"}) {
      if (fs::exists(project_ / "target" / f))
        fs::copy_file(project_ / "target" / f, to / f, fs::copy_options::overwrite_existing);
    }
  }
};

TEST_F(TransformSelectionTest, ExcludeTakesTheExcludedNodesTestsAndUnitTestsTwice) {
  auto all = Ls({});
  auto kept = Ls({"--exclude", "tag:skip+"});
  // Gone: the legacy models, their data tests (the relationships test too, whose other
  // parent stays), the unit test of old_report, and the unit test tagged skip.
  for (const auto& gone :
       {"sel.legacy.old_report", "sel.legacy.older_report", "sel.not_null_old_report_team",
        "sel.not_null_older_report_team", "sel.team_sizes.skipped_on_postgres",
        "sel.old_report.old_report_passes_through"}) {
    EXPECT_TRUE(Has(all, gone) || std::string(gone).find("relationships") != std::string::npos)
        << gone;
    EXPECT_FALSE(Has(kept, gone)) << gone;
  }
  EXPECT_EQ(Starting(kept, "sel.relationships").size(), 0u);
  EXPECT_EQ(Starting(all, "sel.relationships").size(), 1u);
  // A unit test disabled by its rendered config is not there at all.
  EXPECT_FALSE(Has(all, "sel.team_sizes.never_runs"));
  EXPECT_TRUE(Has(kept, "sel.team_sizes.sizes_by_team"));
  EXPECT_TRUE(Has(kept, "sel.unique_stg_people_id"));
  // dbt_audit_helper's CI line, twice on one database: the same result both times.
  for (int run = 0; run < 2; ++run) {
    auto r = Dbt({"build", "--exclude", "tag:skip+", "tag:temporary_skip+"});
    ASSERT_EQ(r.exit_code, 0) << "run " << run << "\n" << r.output;
    // 2 seeds, 3 models, 5 data tests (unique, 2 not_null, is_positive, the singular one),
    // 3 unit tests: everything but the legacy models and what hangs on them.
    EXPECT_NE(r.output.find("PASS=13 WARN=0 ERROR=0 SKIP=0 TOTAL=13"), std::string::npos)
        << "run " << run << "\n"
        << r.output;
    EXPECT_EQ(r.output.find("old_report"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("skipped_on_postgres"), std::string::npos) << r.output;
  }
  // Without the exclusion the tagged unit test runs, and fails as it is written to.
  auto r = Dbt({"build"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("unit test skipped_on_postgres of team_sizes"), std::string::npos)
      << r.output;
}

TEST_F(TransformSelectionTest, SelectTakesTestsByIndirectSelectionMode) {
  // Eager (the default): every test touching team_sizes, the relationships test whose
  // other parent (old_report) is not selected included, and its unit tests.
  auto eager = Ls({"--select", "team_sizes"});
  EXPECT_EQ(Starting(eager, "sel.relationships").size(), 1u);
  EXPECT_TRUE(Has(eager, "sel.not_null_team_sizes_people"));
  EXPECT_TRUE(Has(eager, "sel.team_sizes.sizes_by_team"));
  EXPECT_TRUE(Has(eager, "sel.assert_team_sizes_positive"));
  EXPECT_FALSE(Has(eager, "sel.unique_stg_people_id"));
  // Cautious: only tests whose parents are all selected.
  auto cautious = Ls({"--select", "team_sizes", "--indirect-selection", "cautious"});
  EXPECT_EQ(Starting(cautious, "sel.relationships").size(), 0u);
  EXPECT_TRUE(Has(cautious, "sel.not_null_team_sizes_people"));
  EXPECT_TRUE(Has(cautious, "sel.team_sizes.sizes_by_team"));
  // Cautious, with both parents selected: in.
  auto both = Ls({"--select", "team_sizes", "old_report", "--indirect-selection", "cautious"});
  EXPECT_EQ(Starting(both, "sel.relationships").size(), 1u);
  // Buildable: a test whose other parent is upstream of the selection is in.
  auto buildable = Ls({"--select", "old_report", "--indirect-selection", "buildable"});
  EXPECT_EQ(Starting(buildable, "sel.relationships").size(), 1u);
  auto cautious_old = Ls({"--select", "old_report", "--indirect-selection", "cautious"});
  EXPECT_EQ(Starting(cautious_old, "sel.relationships").size(), 0u);
  // Empty: the model alone.
  EXPECT_EQ(Ls({"--select", "team_sizes", "--indirect-selection", "empty"}),
            std::vector<std::string>{"sel.marts.team_sizes"});
  auto bad = Dbt({"ls", "--indirect-selection", "greedy"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("'greedy' is not one of eager, cautious, buildable, empty"),
            std::string::npos)
      << bad.output;
}

TEST_F(TransformSelectionTest, MethodsThatReadTheProject) {
  EXPECT_EQ(Ls({"--select", "test_type:singular"}),
            std::vector<std::string>{"sel.assert_team_sizes_positive"});
  auto unit = Ls({"--select", "test_type:unit"});
  EXPECT_EQ(unit.size(), 5u);
  for (const auto& u : unit) EXPECT_EQ(u.find("sel."), 0u) << u;
  auto generic = Ls({"--select", "test_type:generic"});
  EXPECT_TRUE(Has(generic, "sel.is_positive_team_sizes_people"));
  EXPECT_FALSE(Has(generic, "sel.assert_team_sizes_positive"));
  auto data = Ls({"--select", "test_type:data"});
  EXPECT_EQ(data.size(), generic.size() + 1);
  EXPECT_EQ(Ls({"--select", "file:team_sizes.sql", "--indirect-selection", "empty"}),
            (std::vector<std::string>{"sel.marts.team_sizes"}));
  EXPECT_EQ(Ls({"--select", "older_report.sql"}), (std::vector<std::string>{
                                                      "sel.legacy.older_report",
                                                      "sel.not_null_older_report_team",
                                                  }));
  EXPECT_EQ(Ls({"--select", "group:core", "--indirect-selection", "empty"}),
            std::vector<std::string>{"sel.marts.team_sizes"});
  EXPECT_EQ(Ls({"--select", "package:this"}).size(), Ls({}).size());
  EXPECT_EQ(Ls({"--select", "package:other"}).size(), 0u);
  // An intersection takes tests too (each criterion selects indirectly, as in dbt).
  EXPECT_EQ(
      Ls({"--select", "version:none,resource_type:model", "--indirect-selection", "empty"}).size(),
      5u);
  EXPECT_EQ(Ls({"--select", "version:latest"}).size(), 0u);
  EXPECT_EQ(Ls({"--select", "tag:skip", "--indirect-selection", "empty"}),
            (std::vector<std::string>{"sel.legacy.old_report", "sel.legacy.older_report",
                                      "sel.team_sizes.skipped_on_postgres"}));
  EXPECT_EQ(Ls({"--select", "config.meta.owner:selection"}).size(), 5u);
  EXPECT_EQ(Ls({"--select", "unit_test:sizes_*"}),
            std::vector<std::string>{"sel.team_sizes.sizes_by_team"});
  auto bad = Dbt({"ls", "--select", "test_type:schemaless"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("test_type 'schemaless' is not one of data, unit, singular, generic"),
            std::string::npos)
      << bad.output;
}

TEST_F(TransformSelectionTest, SelectorsYaml) {
  Write("selectors.yml", R"(selectors:
  - name: no_skip
    description: everything but the legacy models and what hangs on them
    definition:
      union:
        - method: fqn
          value: "*"
        - exclude:
            - method: tag
              value: skip
              children: true
  - name: marts_models
    definition:
      intersection:
        - path: models/marts
        - "resource_type:model"
  - name: marts_cautious
    definition:
      method: path
      value: models/marts
      indirect_selection: cautious
      exclude:
        - people_stamp
  - name: reuse
    definition:
      intersection:
        - method: selector
          value: no_skip
        - method: resource_type
          value: model
          parents: true
)");
  auto no_skip = Ls({"--selector", "no_skip"});
  EXPECT_EQ(no_skip, Ls({"--exclude", "tag:skip+"}));
  // Each criterion of an intersection takes tests with it, so marts' tests are in too.
  auto marts = Ls({"--selector", "marts_models"});
  EXPECT_EQ(Starting(marts, "sel.marts."),
            (std::set<std::string>{"sel.marts.people_stamp", "sel.marts.team_sizes"}));
  EXPECT_TRUE(Has(marts, "sel.not_null_team_sizes_people"));
  EXPECT_FALSE(Has(marts, "sel.staging.stg_people"));
  auto cautious = Ls({"--selector", "marts_cautious"});
  EXPECT_TRUE(Has(cautious, "sel.marts.team_sizes"));
  EXPECT_FALSE(Has(cautious, "sel.marts.people_stamp"));
  EXPECT_EQ(Starting(cautious, "sel.relationships").size(), 0u);
  EXPECT_TRUE(Has(cautious, "sel.not_null_team_sizes_people"));
  auto reuse = Ls({"--selector", "reuse"});
  EXPECT_TRUE(Has(reuse, "sel.staging.stg_people"));
  EXPECT_TRUE(Has(reuse, "sel.raw_people"));  // parents: true
  EXPECT_FALSE(Has(reuse, "sel.legacy.old_report"));
  // --selector wins over --select, as in dbt.
  EXPECT_EQ(Ls({"--selector", "marts_models", "--select", "stg_people"}), marts);
  auto unknown = Dbt({"ls", "--selector", "nightly"});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.output.find("--selector nightly: no such selector in selectors.yml (defined: "
                                "marts_cautious, marts_models, no_skip, reuse)"),
            std::string::npos)
      << unknown.output;
  // A default (its Jinja rendered) applies when nothing is selected on the command line.
  std::string yml = ReadFile(project_ / "selectors.yml");
  yml.replace(yml.find("  - name: marts_models\n"), 23,
              "  - name: marts_models\n    default: \"{{ target.name == 'dev' }}\"\n");
  Write("selectors.yml", yml);
  EXPECT_EQ(Ls({}), marts);
  EXPECT_EQ(Ls({"--select", "stg_people"}).size(), 3u);  // the model and its two tests
  // Mistakes name the file and line.
  Write("selectors.yml", "selectors:\n  - name: a\n    definition:\n      union: tag:x\n");
  auto bad = Dbt({"ls", "--selector", "a"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("selectors.yml:4: 'union' must be a list"), std::string::npos)
      << bad.output;
  Write("selectors.yml",
        "selectors:\n  - name: a\n    definition: {method: selector, value: b}\n"
        "  - name: b\n    definition: {method: selector, value: a}\n");
  bad = Dbt({"ls", "--selector", "a"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("selectors refer to each other in a cycle: a -> b -> a"),
            std::string::npos)
      << bad.output;
}

TEST_F(TransformSelectionTest, StateAndResultCompareWithAnEarlierRun) {
  auto missing = Dbt({"ls", "--select", "state:modified"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.output.find("give --state DIR"), std::string::npos) << missing.output;
  // A build in which the singular test fails.
  Write("tests/assert_team_sizes_positive.sql",
        "select * from {{ ref('team_sizes') }} where people > 0\n");
  auto r = Dbt({"build", "--exclude", "tag:skip+"});
  EXPECT_NE(r.exit_code, 0);
  fs::path state = dir_->path() / "prod";
  CopyTarget(state);
  std::string s = state.string();
  EXPECT_EQ(Ls({"--select", "result:fail", "--state", s}),
            std::vector<std::string>{"sel.assert_team_sizes_positive"});
  EXPECT_EQ(Ls({"--select", "1+result:fail", "--state", s, "--indirect-selection", "empty"}),
            (std::vector<std::string>{"sel.marts.team_sizes", "sel.assert_team_sizes_positive"}));
  EXPECT_EQ(Ls({"--select", "state:modified", "--state", s}), std::vector<std::string>{});
  EXPECT_EQ(Ls({"--select", "state:new", "--state", s}), std::vector<std::string>{});
  // Changes: a model's body, a model's config, a macro a model calls, a new model.
  Write("models/marts/team_sizes.sql",
        "select team, count(*) as people from {{ ref('stg_people') }} group by 1\n");
  Write("models/staging/stg_people.sql",
        "{{ config(materialized='table') }}\nselect id, name, team from {{ ref('raw_people') }}\n");
  Write("macros/helpers.sql",
        "{% macro greeting() %}'hello there'{% endmacro %}\n{% macro one() %}1{% endmacro %}\n");
  Write("models/marts/new_model.sql", "select 1 as x\n");
  EXPECT_EQ(Ls({"--select", "state:new", "--state", s}),
            std::vector<std::string>{"sel.marts.new_model"});
  // The body of team_sizes, and of stg_people (its config() call is in its file).
  EXPECT_EQ(Ls({"--select", "state:modified.body", "--state", s, "--indirect-selection", "empty"}),
            (std::vector<std::string>{"sel.staging.stg_people", "sel.marts.team_sizes"}));
  EXPECT_EQ(
      Ls({"--select", "state:modified.configs", "--state", s, "--indirect-selection", "empty"}),
      (std::vector<std::string>{"sel.staging.stg_people"}));
  EXPECT_EQ(
      Ls({"--select", "state:modified.macros", "--state", s, "--indirect-selection", "empty"}),
      (std::vector<std::string>{"sel.marts.people_stamp"}));
  auto modified = Ls({"--select", "state:modified", "--state", s, "--indirect-selection", "empty"});
  EXPECT_EQ(std::set<std::string>(modified.begin(), modified.end()),
            (std::set<std::string>{"sel.staging.stg_people", "sel.marts.new_model",
                                   "sel.marts.people_stamp", "sel.marts.team_sizes"}));
  // state:modified+ builds what changed and what is downstream; the same twice.
  for (int run = 0; run < 2; ++run) {
    r = Dbt({"build", "--select", "state:modified+", "--state", s, "--exclude", "tag:skip+",
             "assert_team_sizes_positive"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  auto bad = Dbt({"ls", "--select", "state:changed", "--state", s});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("state 'changed' is not one of new, old, modified"), std::string::npos)
      << bad.output;
}

TEST_F(TransformSelectionTest, SourceStatusFresherComparesFreshnessResults) {
  ASSERT_EQ(Dbt({"seed"}).exit_code, 0);
  auto r = Dbt({"source", "freshness"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  fs::path state = dir_->path() / "prod";
  CopyTarget(state);
  std::string s = state.string();
  auto none = Dbt({"ls", "--select", "source_status:fresher", "--state", s});
  ASSERT_EQ(none.exit_code, 0) << none.output;
  EXPECT_EQ(none.output.find("source:"), std::string::npos) << none.output;
  {
    auto conn = pg::Connection::Connect(Url());
    ASSERT_TRUE(conn.ok()) << conn.message();
    Exec(*conn, "insert into analytics.raw_events values (2, '2026-06-01 00:00:00')");
  }
  r = Dbt({"source", "freshness"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Ls({"--select", "source_status:fresher", "--state", s}),
            std::vector<std::string>{"source:sel.landing.raw_events"});
  auto bad = Dbt(
      {"ls", "--select", "source_status:fresher", "--state", (dir_->path() / "nowhere").string()});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("no sources.json there"), std::string::npos) << bad.output;
}

TEST_F(TransformSelectionTest, UnitTestsWithFixtureFilesConfigsAndOverrides) {
  // Files under tests/fixtures and tests/generic are not singular tests.
  auto all = Ls({});
  for (const auto& name : all) {
    EXPECT_EQ(name.find("people_rows"), std::string::npos) << name;
    EXPECT_EQ(name.find("stamp_expected"), std::string::npos) << name;
    EXPECT_NE(name, "sel.is_positive");
  }
  ASSERT_EQ(Dbt({"seed"}).exit_code, 0);
  ASSERT_EQ(Dbt({"run"}).exit_code, 0);
  // The fixture files (the sql one rendered, calling a project macro), `rows: []`, and the
  // overrides of sel.greeting and dbt.current_timestamp all hold.
  // (tag:skip also tags old_report, whose unit test leaves with it.)
  auto r = Dbt({"test", "--select", "test_type:unit", "--exclude", "tag:skip"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("PASS=3 WARN=0 ERROR=0 SKIP=0 TOTAL=3"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("PASS stamp_from_fixture_files"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("PASS no_people_no_teams"), std::string::npos) << r.output;
  // An empty expectation is checked: rows where none are expected fail.
  std::string yml = ReadFile(project_ / "models/schema.yml");
  size_t at =
      yml.find("      - input: ref('stg_people')\n        rows: []\n    expect:\n      rows: []");
  ASSERT_NE(at, std::string::npos);
  yml.replace(at, std::string("      - input: ref('stg_people')\n        rows: []").size(),
              "      - input: ref('stg_people')\n        rows:\n          - {id: 5, team: red}");
  Write("models/schema.yml", yml);
  r = Dbt({"test", "--select", "unit_test:no_people_no_teams"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("Failure in test no_people_no_teams"), std::string::npos) << r.output;
  // A fixture that is not there is named.
  Write("models/schema.yml", ReadFile(project_ / "models/schema.yml") + "");
  yml = ReadFile(project_ / "models/schema.yml");
  yml.replace(yml.find("fixture: people_rows"), 20, "fixture: people_gone");
  Write("models/schema.yml", yml);
  r = Dbt({"ls"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("unit test 'stamp_from_fixture_files': no fixture file "
                          "'people_gone.sql' under the test paths' fixtures/ folder"),
            std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace pdv::testing
