// Issue 32 item 6 with `pdv transform`, against a real PostgreSQL
// (tests/fixtures/dbt_materializations): {% materialization %} blocks of the project and of
// a package, with the adapter API they call; materialized views created, then refreshed
// or altered; a microbatch model built batch by batch; versioned models read with
// ref('m', v=...). Every project builds twice in a row on one database.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "dbt_project_test.h"

namespace pdv::testing {
namespace {

class TransformMaterializationsTest : public DbtProjectTest {
 protected:
  void SetUp() override {
    SetUpProject("dbt_materializations/mats", "mats");
    CopyBeside("dbt_materializations/matpkg", "matpkg");
    auto deps = Dbt({"deps"});
    ASSERT_EQ(deps.exit_code, 0) << deps.output;
    auto conn = Connect(Url());
    Exec(conn,
         "do $$ begin create role mat_reader; exception when duplicate_object then null; end "
         "$$; create schema src; create table src.events (id int, event_at timestamp, amount "
         "int); insert into src.events values (1, '2026-01-01 08:00', 10), (2, '2026-01-01 "
         "20:00', 20), (3, '2026-01-02 09:00', 30), (4, '2026-01-03 10:00', 40); create schema "
         "analytics; create table analytics.hook_log (model text)");
  }
  // The window of the microbatch model: two day batches.
  CommandResult Build(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"build", "--event-time-start", "2026-01-01",
                                     "--event-time-end", "2026-01-03"};
    args.insert(args.end(), extra.begin(), extra.end());
    return Dbt(args);
  }
};

TEST_F(TransformMaterializationsTest, CustomMaterializationsFromTheProjectAndAPackage) {
  auto conn = Connect(Url());
  for (int run = 1; run <= 2; ++run) {
    auto r = Build();
    ASSERT_EQ(r.exit_code, 0) << "run " << run << "\n" << r.output;
    EXPECT_NE(r.output.find("PASS=14 WARN=0 ERROR=0 SKIP=0 TOTAL=14"), std::string::npos)
        << r.output;
    // swap_table: a table, swapped in, with its index, grants and post-hook.
    EXPECT_EQ(
        Scalar(conn, "select relkind from pg_class where oid = 'analytics.swapped'::regclass"),
        "r");
    EXPECT_EQ(ScalarInt(conn, "select count(*) from analytics.swapped"), 4);
    EXPECT_EQ(ScalarInt(conn,
                        "select count(*) from pg_indexes where schemaname = 'analytics' "
                        "and tablename = 'swapped'"),
              1);
    EXPECT_EQ(Scalar(conn,
                     "select has_table_privilege('mat_reader', 'analytics.swapped', "
                     "'select')"),
              "t");
    EXPECT_EQ(ScalarInt(conn, "select count(*) from analytics.hook_log"), run);
    EXPECT_EQ(ScalarInt(conn, "select count(*) from pg_class where relname like 'swapped__dbt%'"),
              0);
    // The view on it was dropped with the old table and made again.
    EXPECT_EQ(ScalarInt(conn, "select n from analytics.swapped_reader"), 4);
    // append_log: each run appends; the second run's listing saw the table.
    EXPECT_EQ(ScalarInt(conn, "select count(*) from analytics.logged where log_key = 'k1'"),
              2 * run);
    // The listing runs in the materialization's transaction, after the table was made.
    EXPECT_EQ(Scalar(conn, "select obj_description('analytics.logged'::regclass)"), "listed=True");
    EXPECT_EQ(Scalar(conn,
                     "select data_type from information_schema.columns where "
                     "table_name = 'logged' and column_name = 'note'"),
              "character varying");
    // The package's postgres materialization, not its default one.
    EXPECT_EQ(Scalar(conn,
                     "select relkind from pg_class where oid = "
                     "'analytics.pkg_viewed'::regclass"),
              "v");
    EXPECT_EQ(ScalarInt(conn, "select n from analytics.pkg_viewed"), 4);
  }
  // --full-refresh: append_log truncates first.
  auto r = Build({"--full-refresh"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(ScalarInt(conn, "select count(*) from analytics.logged"), 2);

  // A failing materialization leaves nothing half done and names its file.
  Write("models/logged.sql", "{{ config(materialized='append_log') }}\nselect 1 as id");
  r = Dbt({"run", "--select", "logged"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("required config 'log_key' is not set"), std::string::npos) << r.output;
  EXPECT_EQ(ScalarInt(conn, "select count(*) from analytics.logged"), 2);
  Write("models/logged.sql", "{{ config(materialized='no_such_thing') }}\nselect 1 as id");
  r = Dbt({"run", "--select", "logged"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("models/logged.sql: unknown materialization 'no_such_thing'"),
            std::string::npos)
      << r.output;
}

TEST_F(TransformMaterializationsTest, MaterializedViewIsCreatedThenRefreshedThenAltered) {
  auto conn = Connect(Url());
  auto r = Build();
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(
      Scalar(conn, "select relkind from pg_class where oid = 'analytics.events_mv'::regclass"),
      "m");
  EXPECT_EQ(ScalarInt(conn, "select count(*) from analytics.events_mv"), 4);
  std::string oid = Scalar(conn, "select 'analytics.events_mv'::regclass::oid::text");
  Exec(conn, "insert into src.events values (5, '2026-01-02 12:00', 50)");
  r = Build();
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Refreshed in place: the same relation, the new row.
  EXPECT_EQ(Scalar(conn, "select 'analytics.events_mv'::regclass::oid::text"), oid);
  EXPECT_EQ(ScalarInt(conn, "select count(*) from analytics.events_mv"), 5);
  EXPECT_NE(r.output.find("REFRESH MATERIALIZED VIEW"), std::string::npos) << r.output;

  // A changed `indexes` config is applied (on_configuration_change: apply, the default).
  Write("models/events_mv.sql",
        "{{ config(materialized='materialized_view', indexes=[{'columns': ['amount'], "
        "'unique': True}]) }}\nselect id, amount from {{ source('src', 'events') }}");
  r = Dbt({"run", "--select", "events_mv"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Scalar(conn,
                   "select string_agg(indexdef, '; ') from pg_indexes where tablename = "
                   "'events_mv'"),
            "CREATE UNIQUE INDEX events_mv_amount_idx ON analytics.events_mv USING btree "
            "(amount)");
  EXPECT_EQ(Scalar(conn, "select 'analytics.events_mv'::regclass::oid::text"), oid);
  // fail: an error, nothing changed.
  Write("models/events_mv.sql",
        "{{ config(materialized='materialized_view', on_configuration_change='fail') }}\n"
        "select id, amount from {{ source('src', 'events') }}");
  r = Dbt({"run", "--select", "events_mv"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("on_configuration_change` was set to `fail`"), std::string::npos)
      << r.output;
  // --full-refresh rebuilds it.
  r = Dbt({"run", "--select", "events_mv", "--full-refresh"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(Scalar(conn, "select 'analytics.events_mv'::regclass::oid::text"), oid);
  EXPECT_EQ(ScalarInt(conn, "select count(*) from pg_indexes where tablename = 'events_mv'"), 0);
}

TEST_F(TransformMaterializationsTest, MicrobatchBuildsEachBatchAndRerunsOne) {
  auto conn = Connect(Url());
  const char* kDays =
      "select string_agg(to_char(day, 'MM-DD') || ':' || n || ':' || total, ' ' order by day) "
      "from analytics.daily";
  for (int run = 1; run <= 2; ++run) {
    auto r = Build();
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("2 batches"), std::string::npos) << r.output;
    // Jan 3 is outside the window.
    EXPECT_EQ(Scalar(conn, kDays), "01-01:2:30 01-02:1:30");
  }
  // New events on both days; a rerun over Jan 2 alone changes Jan 2 alone.
  Exec(conn,
       "insert into src.events values (6, '2026-01-01 09:00', 1), (7, '2026-01-02 10:00', 2)");
  auto r = Dbt({"build", "--select", "base_events", "daily", "--event-time-start", "2026-01-02",
                "--event-time-end", "2026-01-03"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("1 batch "), std::string::npos) << r.output;
  EXPECT_EQ(Scalar(conn, kDays), "01-01:2:30 01-02:2:32");
  // The model's SQL with a batch's filter, as the log shows it.
  Write("models/daily.sql",
        "{{ config(materialized='incremental', incremental_strategy='microbatch', "
        "event_time='day', batch_size='week') }}\nselect 1 as day");
  r = Dbt({"run", "--select", "daily"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("batch_size 'week' is none of hour, day, month, year"), std::string::npos)
      << r.output;
}

TEST_F(TransformMaterializationsTest, VersionedModelsAreReadWithRefV) {
  auto conn = Connect(Url());
  for (int run = 1; run <= 2; ++run) {
    auto r = Build();
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(Scalar(conn,
                     "select pinned || ' ' || latest || ' ' || newest from "
                     "analytics.uses_dim"),
              "one two three");
    EXPECT_EQ(Scalar(conn,
                     "select string_agg(relname, ' ' order by relname) from pg_class c "
                     "join pg_namespace n on n.oid = c.relnamespace where nspname = "
                     "'analytics' and relname like 'dim%'"),
              "dim_v1 dim_v2 dim_v3");
  }
  auto ls = Dbt({"ls"});
  EXPECT_NE(ls.output.find("mats.dim.v2"), std::string::npos) << ls.output;
  // A version without its file is an error naming the properties file.
  Write("models/more.yml", "version: 2\nmodels:\n  - name: other\n    versions:\n      - v: 1\n");
  auto r = Dbt({"ls"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("models/more.yml:5: version 1 of model 'other' has no file "
                          "other_v1.sql"),
            std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace pdv::testing
