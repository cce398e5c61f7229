// dbt snapshots with `pdv transform snapshot`, against a real PostgreSQL: the timestamp and
// check strategies, each hard_deletes mode (ignore, invalidate, new_record), a snapshot
// defined in YAML with dbt_valid_to_current, over a source the test changes between runs
// (tests/fixtures/dbt_snapshots).

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "dbt_project_test.h"

namespace pdv::testing {
namespace {

namespace fs = std::filesystem;

class TransformSnapshotTest : public DbtProjectTest {
 protected:
  void SetUp() override { SetUpProject("dbt_snapshots", "snaps"); }
  // Each version of each customer, oldest first: id:status:open|closed[:deleted].
  std::string History(pg::Connection& conn, const std::string& table, bool deleted = false) {
    return Scalar(
        conn,
        fmt::format("select string_agg(concat_ws(':', id, status, case when "
                    "dbt_valid_to is null or dbt_valid_to = '9999-12-31' then 'open' "
                    "else 'closed' end{}), ' ' order by id, dbt_valid_from, "
                    "dbt_valid_to nulls last) from history.{}",
                    deleted ? ", case dbt_is_deleted when 'True' then 'deleted' end" : "", table));
  }
};

TEST_F(TransformSnapshotTest, EveryStrategyAndHardDeletesModeRecordsTheHistory) {
  auto conn = Connect(Url());
  Exec(conn,
       "create schema src; create table src.customers (id int primary key, status text, opt_in "
       "boolean, updated_at timestamp); insert into src.customers values (1, 'A', true, "
       "'2026-01-01'), (2, 'B', false, '2026-01-01'), (3, 'C', true, '2026-01-01')");
  auto first = Dbt({"snapshot"});
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("PASS=4 WARN=0 ERROR=0 SKIP=0 TOTAL=4"), std::string::npos)
      << first.output;
  EXPECT_NE(first.output.find("OK snapshotted snapshot history.snap_ts"), std::string::npos)
      << first.output;

  // 1 changes (status and time), 2 changes its time only, 3 is deleted, 4 is new.
  Exec(conn,
       "update src.customers set status = 'X', updated_at = '2026-02-01' where id = 1; "
       "update src.customers set updated_at = '2026-02-01' where id = 2; "
       "delete from src.customers where id = 3; "
       "insert into src.customers values (4, 'D', false, '2026-02-01')");
  auto second = Dbt({"snapshot"});
  ASSERT_EQ(second.exit_code, 0) << second.output;
  // 3 comes back, changed, after the run that saw it gone.
  Exec(conn, "insert into src.customers values (3, 'C2', true, now())");
  auto third = Dbt({"build"});  // build runs snapshots too, before what reads them
  ASSERT_EQ(third.exit_code, 0) << third.output;

  // timestamp, deletes ignored: 2's new time is a new version; 3 stays open while deleted.
  EXPECT_EQ(History(conn, "snap_ts"),
            "1:A:closed 1:X:open 2:B:closed 2:B:open 3:C:closed 3:C2:open 4:D:open");
  // A version closes when the next one starts (the source's updated_at).
  EXPECT_EQ(Scalar(conn,
                   "select string_agg(dbt_valid_from || '-' || coalesce(dbt_valid_to::text, ''), "
                   "' ' order by dbt_valid_from) from history.snap_ts where id = 1"),
            "2026-01-01 00:00:00-2026-02-01 00:00:00 2026-02-01 00:00:00-");
  // check on status and opt_in: 2's time alone is no change; 3 is closed when deleted and
  // comes back as a new row.
  EXPECT_EQ(History(conn, "snap_check"),
            "1:A:closed 1:X:open 2:B:open 3:C:closed 3:C2:open 4:D:open");
  // new_record: the deletion is a version of its own, closed when 3 comes back.
  EXPECT_EQ(History(conn, "snap_new_record", true),
            "1:A:closed 1:X:open 2:B:closed 2:B:open 3:C:closed 3:C:closed:deleted 3:C2:open "
            "4:D:open");
  // check_cols: all (updated_at included), current rows valid to 9999-12-31.
  EXPECT_EQ(History(conn, "snap_yaml"),
            "1:A:closed 1:X:open 2:B:closed 2:B:open 3:C:closed 3:C2:open 4:D:open");
  EXPECT_EQ(ScalarInt(conn, "select count(*) from history.snap_yaml where dbt_valid_to is null"),
            0);
  // dbt_scd_id is unique, and the model reading the snapshot ran after it.
  EXPECT_EQ(ScalarInt(conn,
                      "select count(*) - count(distinct dbt_scd_id) from "
                      "history.snap_new_record"),
            0);
  EXPECT_EQ(Scalar(conn,
                   "select string_agg(id || ':' || versions, ' ' order by id) from "
                   "analytics.versions_per_customer"),
            "1:2 2:2 3:2 4:1");
}

// In the same fixture: its source declares freshness; docs generate reads the catalog.
TEST_F(TransformSnapshotTest, SourceFreshnessAndTheCatalog) {
  auto conn = Connect(Url());
  Exec(conn,
       "create schema src; create table src.customers (id int primary key, status text, opt_in "
       "boolean, updated_at timestamp); insert into src.customers values (1, 'A', true, now() - "
       "interval '2 days')");
  auto stale = Dbt({"source", "freshness"});
  EXPECT_EQ(stale.exit_code, 0) << stale.output;  // a warning is no failure
  EXPECT_NE(stale.output.find("1 of 1 WARN freshness of src.customers"), std::string::npos)
      << stale.output;
  auto doc = nlohmann::json::parse(ReadFile(project_ / "target/sources.json"));
  EXPECT_EQ(doc["results"][0]["unique_id"], "source.snaps.src.customers");
  EXPECT_EQ(doc["results"][0]["status"], "warn");
  EXPECT_GT(doc["results"][0]["max_loaded_at_time_ago_in_s"].get<double>(), 2 * 86400 - 60);

  Exec(conn, "update src.customers set updated_at = now() - interval '40 days'");
  auto error = Dbt({"source", "freshness"});
  EXPECT_NE(error.exit_code, 0);
  EXPECT_NE(error.output.find("ERROR STALE freshness of src.customers"), std::string::npos)
      << error.output;
  Exec(conn, "update src.customers set updated_at = now()");
  auto fresh = Dbt({"source", "freshness"});
  EXPECT_EQ(fresh.exit_code, 0) << fresh.output;
  EXPECT_NE(fresh.output.find("PASS=1 WARN=0 ERROR=0"), std::string::npos) << fresh.output;

  ASSERT_EQ(Dbt({"build"}).exit_code, 0);
  auto docs = Dbt({"docs", "generate"});
  ASSERT_EQ(docs.exit_code, 0) << docs.output;
  auto catalog = nlohmann::json::parse(ReadFile(project_ / "target/catalog.json"));
  const auto& model = catalog["nodes"]["model.snaps.versions_per_customer"];
  EXPECT_EQ(model["metadata"]["type"], "VIEW");
  EXPECT_EQ(model["metadata"]["schema"], "analytics");
  EXPECT_EQ(model["columns"]["versions"]["type"], "bigint");
  EXPECT_EQ(model["columns"]["versions"]["index"], 2);
  const auto& snap = catalog["nodes"]["snapshot.snaps.snap_check"];
  EXPECT_EQ(snap["metadata"]["type"], "BASE TABLE");
  EXPECT_EQ(snap["columns"]["dbt_valid_to"]["type"], "timestamp without time zone");
  EXPECT_EQ(catalog["sources"]["source.snaps.src.customers"]["columns"].size(), 4u);
  EXPECT_TRUE(fs::exists(project_ / "target/manifest.json"));
}

TEST_F(TransformSnapshotTest, BadConfigNamesTheFile) {
  std::ofstream(project_ / "snapshots/snap_bad.sql")
      << "{% snapshot snap_bad %}\n{{ config(unique_key='id', strategy='timestamp') }}\n"
         "select 1 as id\n{% endsnapshot %}\n";
  auto r = Dbt({"snapshot", "--select", "snap_bad"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("snapshots/snap_bad.sql: the timestamp strategy needs updated_at"),
            std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace pdv::testing
