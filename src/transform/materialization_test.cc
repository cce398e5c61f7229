// Golden tests: the exact SQL each materialization runs.

#include "transform/materialization.h"

#include <gtest/gtest.h>

namespace pdv::transform {
namespace {

const RelationRef kRel{"marts", "dim"};

TEST(Materialization, TableIsBuiltAsideAndSwappedIn) {
  auto sql = ReplaceRelationSql(kRel, "select 1 as id", RelationKind::kTable, RelationKind::kTable,
                                nlohmann::json::parse(R"([{"columns": ["id"], "unique": true}])"));
  std::vector<std::string> expected = {
      R"(create schema if not exists "marts")",
      "create table \"marts\".\"dim__dbt_tmp\" as (\nselect 1 as id\n)",
      R"(create unique index on "marts"."dim__dbt_tmp" (id))",
      R"(alter table "marts"."dim" rename to "dim__dbt_backup")",
      R"(alter table "marts"."dim__dbt_tmp" rename to "dim")",
      R"(drop table if exists "marts"."dim__dbt_backup" cascade)"};
  EXPECT_EQ(sql, expected);
}

TEST(Materialization, ViewReplacingATableAndFirstBuild) {
  auto sql = ReplaceRelationSql(kRel, "select 1", RelationKind::kView, RelationKind::kTable, {});
  ASSERT_EQ(sql.size(), 5u);
  EXPECT_EQ(sql[1], "create view \"marts\".\"dim__dbt_tmp\" as (\nselect 1\n)");
  EXPECT_EQ(sql[2], R"(alter table "marts"."dim" rename to "dim__dbt_backup")");
  EXPECT_EQ(sql[3], R"(alter view "marts"."dim__dbt_tmp" rename to "dim")");
  EXPECT_EQ(sql[4], R"(drop table if exists "marts"."dim__dbt_backup" cascade)");
  auto first = ReplaceRelationSql(kRel, "select 1", RelationKind::kTable, RelationKind::kNone, {});
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(first[2], R"(alter table "marts"."dim__dbt_tmp" rename to "dim")");
}

TEST(Materialization, IncrementalStrategies) {
  std::string error;
  auto append = IncrementalSql(kRel, "select 1 as id, 2 as v", "", {}, {"id", "v"}, &error);
  ASSERT_TRUE(error.empty());
  std::vector<std::string> expected_append = {
      "insert into \"marts\".\"dim\" (\"id\", \"v\")\n(select \"id\", \"v\" from (\n"
      "select 1 as id, 2 as v\n) as dbt_new_rows)"};
  EXPECT_EQ(append, expected_append);

  auto del = IncrementalSql(kRel, "q", "", {"id"}, {"id", "v"}, &error);  // default with a key
  std::vector<std::string> expected_delete_insert = {
      "with dbt_new_rows as materialized (\nq\n),\n"
      "dbt_deleted as (\n  delete from \"marts\".\"dim\" where (\"id\") in (select \"id\" "
      "from dbt_new_rows)\n  returning 1\n)\n"
      "insert into \"marts\".\"dim\" (\"id\", \"v\")\n(select \"id\", \"v\" from "
      "dbt_new_rows\n where (select count(*) from dbt_deleted) >= 0)"};
  EXPECT_EQ(del, expected_delete_insert);

  auto merge = IncrementalSql(kRel, "q", "merge", {"id"}, {"id", "v"}, &error);
  ASSERT_EQ(merge.size(), 1u);
  EXPECT_EQ(merge[0],
            "merge into \"marts\".\"dim\" as DBT_INTERNAL_DEST\n"
            "using (\nq\n) as DBT_INTERNAL_SOURCE\n"
            "on (DBT_INTERNAL_SOURCE.\"id\" = DBT_INTERNAL_DEST.\"id\")\n"
            "when matched then update set\n"
            "  \"id\" = DBT_INTERNAL_SOURCE.\"id\", \"v\" = DBT_INTERNAL_SOURCE.\"v\"\n"
            "when not matched then insert\n  (\"id\", \"v\")\n"
            "values\n  (DBT_INTERNAL_SOURCE.\"id\", DBT_INTERNAL_SOURCE.\"v\")");

  EXPECT_TRUE(IncrementalSql(kRel, "q", "merge", {}, {"id"}, &error).empty());
  EXPECT_EQ(error, "incremental_strategy 'merge' needs a unique_key");
  error.clear();
  EXPECT_TRUE(IncrementalSql(kRel, "q", "insert_overwrite", {"id"}, {"id"}, &error).empty());
  EXPECT_EQ(error,
            "unknown incremental_strategy 'insert_overwrite' (append, delete+insert, merge)");
}

TEST(Materialization, EphemeralCtes) {
  std::vector<std::pair<std::string, std::string>> ctes = {{"__dbt__cte__a", "select 1"}};
  EXPECT_EQ(InjectCtes("select * from __dbt__cte__a", ctes),
            "with __dbt__cte__a as (\nselect 1\n)\nselect * from __dbt__cte__a");
  EXPECT_EQ(InjectCtes("-- note\nWITH x as (select 2) select * from x, __dbt__cte__a", ctes),
            "-- note\nWITH __dbt__cte__a as (\nselect 1\n), x as (select 2) select * from x, "
            "__dbt__cte__a");
  EXPECT_EQ(InjectCtes("select 1", {}), "select 1");
}

TEST(Materialization, TestQueryCountsFailingRows) {
  EXPECT_EQ(
      TestQuerySql("select id from t where id is null"),
      "select count(*) as failures, count(*) <> 0 as should_warn, count(*) <> 0 as should_error\n"
      "from (\nselect id from t where id is null\n) dbt_internal_test");
}

}  // namespace
}  // namespace pdv::transform
