// Issue 32 item 6, without a database: {% materialization %} blocks as macros, the SQL of a
// materialized view's index changes and of a microbatch model's batches.

#include <gtest/gtest.h>

#include "transform/jinja.h"
#include "transform/materialized_view.h"
#include "transform/microbatch.h"

namespace pdv::transform {
namespace {

TEST(CustomMaterialization, BlocksAreMacrosNamedByAdapter) {
  auto t = jinja::Template::Parse(
      "{% materialization swap, adapter='postgres' %}{{ return(1) }}{% endmaterialization %}\n"
      "{% materialization swap, default %}x{% endmaterialization %}\n"
      "{% materialization t2, adapter='postgres', supported_languages=['sql'] %}"
      "{% endmaterialization %}",
      "m.sql");
  ASSERT_TRUE(t.ok()) << t.message();
  jinja::Environment env("p");
  auto names = env.AddMacros(*t);
  EXPECT_EQ(names, (std::vector<std::string>{"materialization_swap_postgres",
                                             "materialization_swap_default",
                                             "materialization_t2_postgres"}));
  auto bad = jinja::Template::Parse("{% materialization swap %}{% endmaterialization %}", "b.sql");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.message(),
            "b.sql:1: a materialization needs adapter='<type>' or default at 'end of tag'");
  auto open = jinja::Template::Parse("{% materialization swap, default %}", "o.sql");
  EXPECT_FALSE(open.ok());
}

TEST(MaterializedView, IndexChangesDropWhatIsNotWantedAndMakeWhatIsMissing) {
  RelationRef rel{"marts", "mv"};
  std::vector<IndexShape> existing = {{.name = "mv_id_idx", .columns = "id"},
                                      {.name = "mv_a_idx", .columns = "a", .unique = true}};
  EXPECT_TRUE(IndexChangeSql(rel, existing, nlohmann::json::parse(R"([{"columns": ["ID"]},
                                                       {"columns": ["a"], "unique": true}])"))
                  .empty());
  auto sql = IndexChangeSql(rel, existing,
                            nlohmann::json::parse(R"([{"columns": ["id"], "type": "hash"}])"));
  std::vector<std::string> expected = {R"(drop index if exists "marts"."mv_id_idx")",
                                       R"(drop index if exists "marts"."mv_a_idx")",
                                       R"(create index on "marts"."mv" using hash (id))"};
  EXPECT_EQ(sql, expected);
}

TEST(Microbatch, BatchesAndTheEventTimeFilter) {
  EXPECT_EQ(BatchesSql("'2026-01-01'::timestamp", "'2026-01-03'::timestamp", "day"),
            "select to_char(b, 'YYYY-MM-DD HH24:MI:SS'), to_char(least(b + w.step, w.e), "
            "'YYYY-MM-DD HH24:MI:SS') from (select date_trunc('day', '2026-01-01'::timestamp) as "
            "s, ('2026-01-03'::timestamp)::timestamp as e, interval '1 day' as step) w, "
            "generate_series(w.s, w.e - interval '1 microsecond', w.step) b order by b");
  EXPECT_EQ(EventTimeFiltered(R"("s"."events")", "event_at", "events",
                              {"2026-01-01 00:00:00", "2026-01-02 00:00:00"}),
            R"((select * from "s"."events" where event_at >= '2026-01-01 00:00:00+00:00' and )"
            R"(event_at < '2026-01-02 00:00:00+00:00') _dbt_et_filter_subq_events)");
}

}  // namespace
}  // namespace pdv::transform
