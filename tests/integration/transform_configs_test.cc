// The configs dbt-postgres acts on, with `pdv transform` against a real PostgreSQL
// (tests/fixtures/dbt_configs, to which each test adds its files): project and seed hooks,
// seed delimiter, contracts with constraints, grants (a second role), persist_docs with
// doc() blocks, on_schema_change, store_failures, and the warning for configs pdv does not
// act on. Every project builds twice in a row.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "dbt_project_test.h"
#include "pg/connection.h"

namespace pdv::testing {
namespace {

namespace fs = std::filesystem;

class TransformConfigsTest : public DbtProjectTest {
 protected:
  void SetUp() override { SetUpProject("dbt_configs", "configs"); }

  void BuildTwice(const std::vector<std::string>& command = {"build"}) {
    for (int round = 0; round < 2; ++round) {
      auto r = Dbt(command);
      ASSERT_EQ(r.exit_code, 0) << "round " << round << ": " << r.output;
    }
  }
};

TEST_F(TransformConfigsTest, ProjectAndSeedHooksRunWithDbtsContext) {
  BuildTwice();
  auto conn = Connect(Url());
  // The seed read with its `;` delimiter; its hooks ran in its transaction, around the load.
  EXPECT_EQ(ScalarInt(conn, "select count(*) from analytics.customers where name = 'Bruno'"), 1);
  EXPECT_EQ(ScalarInt(conn,
                      "select count(*) from analytics.run_log where event = 'start' and "
                      "detail = 'build'"),
            2);
  EXPECT_EQ(ScalarInt(conn,
                      "select count(*) from analytics.run_log where event = 'seed_pre' and "
                      "detail = 'customers'"),
            2);
  EXPECT_EQ(ScalarInt(conn,
                      "select count(*) from analytics.run_log where event = 'seed_post' and "
                      "detail = '3'"),
            2);
  // on-run-end saw every result and the run's schemas.
  EXPECT_EQ(ScalarInt(conn,
                      "select count(*) from analytics.run_log where event = 'orders' and "
                      "detail = 'success'"),
            2);
  EXPECT_EQ(ScalarInt(conn,
                      "select count(*) from analytics.run_log where event = 'schemas' and "
                      "detail = 'analytics'"),
            2);
  // A failing on-run-start hook names its line, runs no node and fails the run.
  std::string project = ReadFile(project_ / "dbt_project.yml");
  project.replace(project.find("on-run-start:\n"), std::string("on-run-start:\n").size(),
                  "on-run-start:\n  - \"select * from no_such_table\"\n");
  Write("dbt_project.yml", project);
  auto r = Dbt({"run"});
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("dbt_project.yml:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("on-run-start hook failed"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("no_such_table"), std::string::npos) << r.output;
}

TEST_F(TransformConfigsTest, AnEnforcedContractBuildsTheDeclaredTableWithItsConstraints) {
  Write("models/customers_dim.sql", "select id, name from {{ ref('customers') }}\n");
  Write("models/schema.yml", R"(version: 2
models:
  - name: customers_dim
    config:
      materialized: table
      contract: {enforced: true}
    columns:
      - name: id
        data_type: int
        constraints:
          - type: primary_key
      - name: name
        data_type: text
        constraints:
          - type: not_null
  - name: orders
    config:
      materialized: table
      contract:
        enforced: true
    constraints:
      - type: check
        name: amount_not_negative
        expression: "amount >= 0"
      - type: unique
        columns: [id, customer_id]
    columns:
      - name: id
        data_type: integer
        constraints:
          - type: not_null
      - name: customer_id
        data_type: int
        constraints:
          - type: foreign_key
            to: ref('customers_dim')
            to_columns: [id]
      - name: amount
        data_type: numeric(10,2)
)");
  BuildTwice();
  auto conn = Connect(Url());
  auto constraints = [&](const std::string& table) {
    return Scalar(conn,
                  "select string_agg(contype::text, '' order by contype) from pg_constraint "
                  "where conrelid = 'analytics." +
                      table + "'::regclass");
  };
  EXPECT_EQ(constraints("customers_dim"), "p");
  EXPECT_EQ(constraints("orders"), "cfu");
  EXPECT_EQ(ScalarInt(conn,
                      "select count(*) from pg_constraint where conname = "
                      "'amount_not_negative'"),
            1);
  EXPECT_EQ(Scalar(conn,
                   "select attnotnull::text from pg_attribute where attrelid = "
                   "'analytics.orders'::regclass and attname = 'id'"),
            "true");
  EXPECT_EQ(Scalar(conn,
                   "select format_type(atttypid, atttypmod) from pg_attribute where "
                   "attrelid = 'analytics.orders'::regclass and attname = 'amount'"),
            "numeric(10,2)");
  EXPECT_EQ(ScalarInt(conn, "select count(*) from analytics.orders"), 2);
  // A row against a constraint fails the build, and the table stays as it was.
  Write("models/orders.sql", "select 1 as id, 1 as customer_id, -1.00::numeric(10,2) as amount\n");
  auto r = Dbt({"run", "--select", "orders"});
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("amount_not_negative"), std::string::npos) << r.output;
  EXPECT_EQ(ScalarInt(conn, "select count(*) from analytics.orders"), 2);
  // A column of another type, one missing and one undeclared: dbt's table of mismatches.
  Write("models/orders.sql",
        "select 'x'::text as id, 10.50::numeric(10,2) as amount, 1 as extra\n");
  r = Dbt({"run", "--select", "orders"});
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("models/orders.sql (models/schema.yml:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("this model has an enforced contract that failed"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("| id | TEXT | INTEGER | data type mismatch |"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("| customer_id |  | INT | missing in definition |"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("| extra | INTEGER |  | missing in contract |"), std::string::npos)
      << r.output;
}

TEST_F(TransformConfigsTest, GrantsAreAppliedAndRevokedAndDocsPersistedAsComments) {
  const std::string reader = "reader_" + db_, writer = "writer_" + db_;
  auto conn = Connect(Url());
  Exec(conn, fmt::format("create role {}", reader));
  Exec(conn, fmt::format("create role {}", writer));
  Write("models/events.sql", "{{ config(materialized='incremental') }}\nselect 1 as id\n");
  Write("dbt_project.yml", ReadFile(project_ / "dbt_project.yml") + fmt::format(R"(
models:
  configs:
    +persist_docs: {{relation: true, columns: true}}
    +grants:
      select: ["{0}"]
    events:
      +grants:
        select: ["{0}", "{1}"]
        insert: "{1}"
)",
                                                                                reader, writer));
  BuildTwice();
  auto privilege = [&](const std::string& role, const std::string& table, const std::string& what) {
    return Scalar(conn, fmt::format("select has_table_privilege('{}', 'analytics.{}', '{}')::text",
                                    role, table, what));
  };
  EXPECT_EQ(privilege(reader, "orders", "select"), "true");
  EXPECT_EQ(privilege(writer, "orders", "select"), "false");
  EXPECT_EQ(privilege(writer, "events", "insert"), "true");
  EXPECT_EQ(privilege(writer, "events", "select"), "true");
  // doc() resolved from models/docs.md; columns the relation has get their descriptions.
  EXPECT_EQ(Scalar(conn, "select obj_description('analytics.orders'::regclass, 'pg_class')"),
            "One row per order.");
  EXPECT_EQ(Scalar(conn, "select col_description('analytics.orders'::regclass, 3)"),
            "What it cost, in BRL.");
  // The incremental table keeps its grants across runs: what is no longer configured is
  // revoked, as dbt's apply_grants does.
  std::string project = ReadFile(project_ / "dbt_project.yml");
  project.replace(project.find("        insert: \""), std::string("        insert: \"").size(),
                  "        # insert: \"");
  Write("dbt_project.yml", project);
  BuildTwice({"run"});
  EXPECT_EQ(privilege(writer, "events", "insert"), "false");
  EXPECT_EQ(privilege(writer, "events", "select"), "true");
  // A doc() that no block defines is an error naming the property file.
  Write("models/schema.yml",
        "version: 2\nmodels:\n  - name: orders\n    description: \"{{ "
        "doc('nothing') }}\"\n");
  auto r = Dbt({"ls"});
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("models/schema.yml:3: the description of model 'orders' refers to "
                          "doc('nothing')"),
            std::string::npos)
      << r.output;
}

TEST_F(TransformConfigsTest, OnSchemaChangeAppendsSyncsFailsOrIgnores) {
  auto model = [&](const std::string& mode, const std::string& columns) {
    Write("models/events.sql",
          fmt::format("{{{{ config(materialized='incremental', on_schema_change='{}') }}}}\n"
                      "select {} \n",
                      mode, columns));
  };
  auto conn = Connect(Url());
  auto columns = [&] {
    return Scalar(conn,
                  "select string_agg(column_name::text, ',' order by ordinal_position) "
                  "from information_schema.columns where table_schema = 'analytics' and "
                  "table_name = 'events'");
  };
  model("append_new_columns", "1 as id, 'a'::text as kind");
  BuildTwice({"run", "--select", "events"});
  model("ignore", "2 as id, 'b'::text as kind, 5 as weight");
  BuildTwice({"run", "--select", "events"});
  EXPECT_EQ(columns(), "id,kind");
  model("append_new_columns", "3 as id, 'c'::text as kind, 7 as weight");
  BuildTwice({"run", "--select", "events"});
  EXPECT_EQ(columns(), "id,kind,weight");
  EXPECT_EQ(ScalarInt(conn, "select count(*) from analytics.events where weight = 7"), 2);
  model("fail", "4 as id, 'd'::text as kind");
  auto r = Dbt({"run", "--select", "events"});
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("models/events.sql: the source and target schemas on this incremental "
                          "model are out of sync"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("Target columns not in source: [weight]"), std::string::npos) << r.output;
  model("sync_all_columns", "5::bigint as id, 'e'::text as kind");
  BuildTwice({"run", "--select", "events"});
  EXPECT_EQ(columns(), "id,kind");
  EXPECT_EQ(Scalar(conn,
                   "select data_type from information_schema.columns where table_schema = "
                   "'analytics' and table_name = 'events' and column_name = 'id'"),
            "bigint");
  EXPECT_EQ(ScalarInt(conn, "select count(*) from analytics.events where id = 5"), 2);
}

TEST_F(TransformConfigsTest, StoreFailuresKeepsTheFailingRowsInTheAuditSchema) {
  Write("models/schema.yml", R"(version: 2
models:
  - name: orders
    columns:
      - name: amount
        data_tests:
          - accepted_values:
              values: [10.50]
              config:
                store_failures: true
      - name: id
        data_tests:
          - not_null:
              config:
                store_failures_as: view
                schema: checks
)");
  Write("tests/no_big_orders.sql",
        "{{ config(store_failures=true) }}\nselect * from {{ ref('orders') }} where amount > 15\n");
  for (int round = 0; round < 2; ++round) {
    auto r = Dbt({"build"});
    EXPECT_NE(r.exit_code, 0) << r.output;  // two tests fail, each run
    EXPECT_NE(r.output.find("PASS=3 WARN=0 ERROR=2"), std::string::npos) << r.output;
  }
  auto conn = Connect(Url());
  EXPECT_EQ(ScalarInt(conn, "select count(*) from analytics_dbt_test__audit.no_big_orders"), 1);
  EXPECT_EQ(ScalarInt(conn,
                      "select count(*) from information_schema.tables where table_schema = "
                      "'analytics_dbt_test__audit' and table_name like "
                      "'accepted_values_orders_amount%'"),
            1);
  EXPECT_EQ(Scalar(conn,
                   "select table_type from information_schema.tables where table_schema = "
                   "'analytics_checks' and table_name = 'not_null_orders_id'"),
            "VIEW");
}

TEST_F(TransformConfigsTest, ConfigsPdvDoesNotActOnAreWarnedWithTheirFile) {
  Write("dbt_project.yml", ReadFile(project_ / "dbt_project.yml") + R"(
models:
  configs:
    +materialised: table
    +unlogged: true
)");
  Write("models/orders.sql", "{{ config(sort_order='asc') }}\nselect 1 as id\n");
  auto r = Dbt({"ls"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("dbt_project.yml:25: 'materialised' is not a dbt config"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("dbt_project.yml:26: config 'unlogged' is not supported by pdv"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("models/orders.sql: 'sort_order' is not a dbt config"), std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace pdv::testing
