// Loading a project from disk: configs, selection, errors (no database needed).

#include "transform/project.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "transform/graph.h"

namespace pdv::transform {
namespace {

namespace fs = std::filesystem;

class ProjectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("pdv-project-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::copy(fs::path(PDV_FIXTURES) / "dbt_shop", dir_, fs::copy_options::recursive);
    setenv("SHOP_PG_HOST", "127.0.0.1", 1);
    setenv("SHOP_PG_PORT", "5999", 1);
    setenv("SHOP_PG_DB", "shop", 1);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& rel, const std::string& text) {
    fs::create_directories((dir_ / rel).parent_path());
    std::ofstream(dir_ / rel) << text;
  }
  Result<Project> Load(const std::string& vars = "") {
    return LoadProject({.project_dir = dir_.string(), .vars_yaml = vars});
  }
  std::set<std::string> Select(const Project& p, std::vector<std::string> select,
                               std::vector<std::string> exclude = {}) {
    auto g = Graph::Build(p);
    EXPECT_TRUE(g.ok()) << g.message();
    auto s = g->Select(select, exclude, false);
    EXPECT_TRUE(s.ok()) << s.message();
    std::set<std::string> names;
    for (const auto& id : *s) names.insert(p.nodes.at(id).name);
    return names;
  }
  static std::string ReadFile(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  fs::path dir_;
};

// Issue 11: a model cannot read the platform's secrets; profiles.yml still reads any
// variable (the fixture's host and port come from SHOP_PG_*).
TEST_F(ProjectTest, ModelsSeeOnlyDbtEnvVariables) {
  setenv("PDV_CPF_KEY", "the-platform-secret-key", 1);
  Write("models/leak.sql", "select '{{ env_var(\"PDV_CPF_KEY\", \"none\") }}' as k\n");
  auto leaked = Load();
  ASSERT_FALSE(leaked.ok());
  EXPECT_NE(leaked.message().find("leak.sql:1"), std::string::npos) << leaked.message();
  EXPECT_NE(leaked.message().find("PDV_* variables are the platform's"), std::string::npos)
      << leaked.message();
  EXPECT_EQ(leaked.message().find("the-platform-secret-key"), std::string::npos);
  // Issue 30: dbt's rule for its secrets.
  setenv("DBT_ENV_SECRET_TOKEN", "tok-3141", 1);
  Write("models/leak.sql", "select '{{ env_var(\"DBT_ENV_SECRET_TOKEN\") }}' as k\n");
  auto secret_in_model = Load();
  ASSERT_FALSE(secret_in_model.ok());
  EXPECT_NE(secret_in_model.message().find(
                "leak.sql:1: env_var('DBT_ENV_SECRET_TOKEN'): Secret env vars are allowed only in "
                "profiles.yml or packages.yml"),
            std::string::npos)
      << secret_in_model.message();
  setenv("DBT_ENV_REGION", "sp", 1);
  Write("models/leak.sql", "select '{{ env_var(\"DBT_ENV_REGION\") }}' as k\n");
  auto fine = Load();
  EXPECT_TRUE(fine.ok()) << fine.message();
  // A variable the operator declared is readable; a secret cannot be declared.
  setenv("STORE_REGION", "sul", 1);
  Write("models/leak.sql", "select '{{ env_var(\"STORE_REGION\") }}' as k\n");
  EXPECT_FALSE(Load().ok());
  auto declared = LoadProject({.project_dir = dir_.string(), .declared_env = {"STORE_REGION"}});
  EXPECT_TRUE(declared.ok()) << declared.message();
  auto secret = LoadProject({.project_dir = dir_.string(), .declared_env = {"PDV_CPF_KEY"}});
  ASSERT_FALSE(secret.ok());
  EXPECT_NE(secret.message().find("a secret cannot be made readable"), std::string::npos)
      << secret.message();
  unsetenv("STORE_REGION");
  unsetenv("PDV_CPF_KEY");
  unsetenv("DBT_ENV_SECRET_TOKEN");
  unsetenv("DBT_ENV_REGION");
}

// Issue 30: profiles.yml reads any variable but the platform's own; its DBT_ENV_SECRET_*
// password is scrubbed from the errors.
TEST_F(ProjectTest, ProfilesReadNoPdvVariable) {
  setenv("PDV_WAREHOUSE_URL", "postgresql://postgres:pw-2718@127.0.0.1/w", 1);
  std::string profiles = ReadFile(dir_ / "profiles.yml");
  std::string leaky = profiles;
  leaky.replace(leaky.find("{{ env_var('SHOP_PG_DB') }}"),
                std::string("{{ env_var('SHOP_PG_DB') }}").size(),
                "{{ env_var('PDV_WAREHOUSE_URL', 'x') }}");
  Write("profiles.yml", leaky);
  auto refused = Load();
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("profiles.yml:10: env_var('PDV_WAREHOUSE_URL'): PDV_* "
                                   "variables are the platform's"),
            std::string::npos)
      << refused.message();
  EXPECT_EQ(refused.message().find("pw-2718"), std::string::npos) << refused.message();
  unsetenv("PDV_WAREHOUSE_URL");
  // A secret profiles.yml may read, in a value that makes an error: shown scrubbed.
  setenv("DBT_ENV_SECRET_SHOP_PG_PASSWORD", "pw-1618", 1);
  std::string bad = profiles;
  bad.replace(bad.find("{{ env_var('SHOP_PG_DB') }}"),
              std::string("{{ env_var('SHOP_PG_DB') }}").size(),
              "{{ exceptions.raise_compiler_error('no ' ~ "
              "env_var('DBT_ENV_SECRET_SHOP_PG_PASSWORD')) }}");
  Write("profiles.yml", bad);
  auto scrubbed = Load();
  ASSERT_FALSE(scrubbed.ok());
  EXPECT_NE(scrubbed.message().find("no *****"), std::string::npos) << scrubbed.message();
  EXPECT_EQ(scrubbed.message().find("pw-1618"), std::string::npos) << scrubbed.message();
  Write("profiles.yml", profiles);
  auto fine = Load();
  ASSERT_TRUE(fine.ok()) << fine.message();
  EXPECT_NE(fine->target.conninfo.find("pw-1618"), std::string::npos);  // still used
  unsetenv("DBT_ENV_SECRET_SHOP_PG_PASSWORD");
}

TEST_F(ProjectTest, ConfigsFromProjectSchemaAndFile) {
  auto p = Load();
  ASSERT_TRUE(p.ok()) << p.message();
  EXPECT_EQ(p->target.conninfo.find("port='5999'") != std::string::npos, true)
      << p->target.conninfo;
  const Node* totals = p->FindModelOrSeed("customer_totals");
  ASSERT_NE(totals, nullptr);
  EXPECT_EQ(totals->materialized(), "table");    // `materialized:` without + under marts
  EXPECT_EQ(totals->schema, "analytics_marts");  // dbt's default generate_schema_name
  EXPECT_EQ(totals->tags(), (std::vector<std::string>{"marts", "finance"}));
  const Node* stg = p->FindModelOrSeed("stg_customers");
  EXPECT_EQ(stg->materialized(), "view");
  EXPECT_EQ(stg->tags(), (std::vector<std::string>{"staging"}));
  EXPECT_EQ(p->FindModelOrSeed("stg_orders")->materialized(), "ephemeral");
  EXPECT_EQ(p->FindModelOrSeed("raw_orders")->config["column_types"]["amount"], "numeric(10,2)");
  EXPECT_EQ(p->vars["currency"], "BRL");  // project-scoped vars
  auto with_vars = Load("{vip_threshold: 5}");
  ASSERT_TRUE(with_vars.ok());
  EXPECT_EQ(with_vars->vars["vip_threshold"], 5);
  auto bad_vars = Load("[1, 2]");
  ASSERT_FALSE(bad_vars.ok());
  EXPECT_EQ(bad_vars.message(), "--vars: expected a YAML mapping such as '{key: value}'");
  EXPECT_EQ(totals->depends_on,
            (std::vector<std::string>{"model.shop.stg_orders", "model.shop.stg_customers"}));
}

TEST_F(ProjectTest, Selection) {
  auto p = Load();
  ASSERT_TRUE(p.ok()) << p.message();
  using S = std::set<std::string>;
  EXPECT_EQ(Select(*p, {"tag:finance"}), S{"customer_totals"});
  EXPECT_EQ(Select(*p, {"+customer_totals"}),
            (S{"customer_totals", "stg_orders", "stg_customers", "raw_orders", "raw_customers"}));
  EXPECT_EQ(Select(*p, {"1+customer_totals"}),
            (S{"customer_totals", "stg_orders", "stg_customers"}));
  // The excluded model's tests leave with it (dbt's eager exclusion), the relationships
  // test to stg_customers included.
  EXPECT_EQ(Select(*p, {"stg_customers+"}, {"customer_totals"}),
            (S{"stg_customers", "accepted_values_stg_customers_status__active",
               "not_null_stg_customers_id", "unique_stg_customers_id"}));
  EXPECT_EQ(Select(*p, {"path:models/staging"}), (S{"stg_customers", "stg_orders"}));
  EXPECT_EQ(Select(*p, {"tag:marts,config.materialized:incremental"}),
            (S{"orders_merged", "orders_appended", "orders_replaced"}));
  EXPECT_EQ(Select(*p, {"staging"}), (S{"stg_customers", "stg_orders"}));  // fqn folder
  EXPECT_EQ(Select(*p, {"orders_merged raw_customers"}), (S{"orders_merged", "raw_customers"}));
  auto g = Graph::Build(*p);
  auto bad = g->Select({"colour:red"}, {}, false);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("unknown selection method 'colour:'"), std::string::npos);
}

TEST_F(ProjectTest, ProfileTargetsAndThePlatformProject) {
  auto other = LoadProject({.project_dir = dir_.string(), .target = "other"});
  ASSERT_TRUE(other.ok()) << other.message();
  EXPECT_EQ(other->target.name, "other");
  EXPECT_EQ(other->target.conninfo,
            "host='127.0.0.1' port='6543' user='reporting' dbname='shop_reporting' "
            "password='s3cr3t' ");
  EXPECT_EQ(other->FindModelOrSeed("customer_totals")->schema, "reports_marts");
  auto missing = LoadProject({.project_dir = dir_.string(), .target = "prod"});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("profile 'shop' has no target 'prod'"), std::string::npos);

  // The platform's project needs no profile; its schemas are the contract's.
  auto platform =
      LoadProject({.project_dir = std::string(PDV_FIXTURES) + "/../../transform",
                   .platform_warehouse_url = "postgresql://pdv@127.0.0.1:5999/warehouse"});
  ASSERT_TRUE(platform.ok()) << platform.message();
  EXPECT_EQ(platform->target.database, "warehouse");
  EXPECT_EQ(platform->FindModelOrSeed("stg_clientes_clube")->RelationName(),
            "\"staging\".\"stg_clientes_clube\"");
  EXPECT_EQ(platform->FindModelOrSeed("dim_clientes_clube")->RelationName(),
            "\"marts\".\"dim_clientes_clube\"");
  using S = std::set<std::string>;
  EXPECT_EQ(Select(*platform, {"source:raw"}), S{"clientes_clube"});
  auto downstream = Select(*platform, {"source:raw.clientes_clube+"}, {"resource_type:test"});
  EXPECT_EQ(downstream, (S{"clientes_clube", "stg_clientes_clube", "dim_clientes_clube",
                           "snap_clientes_clube"}));
}

TEST_F(ProjectTest, CycleIsNamed) {
  Write("models/a.sql", "select * from {{ ref('b') }}");
  Write("models/b.sql", "select * from {{ ref('a') }}");
  auto p = Load();
  ASSERT_TRUE(p.ok()) << p.message();
  auto g = Graph::Build(*p);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.message(), "found a cycle: model.shop.a --> model.shop.b --> model.shop.a");
}

TEST_F(ProjectTest, ErrorsNameFileAndLine) {
  Write("models/x.sql", "select 1\nunion all\nselect * from {{ ref('nope') }}");
  auto p = Load();
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.message(),
            "models/x.sql:3: model 'x' depends on ref('nope'), which is not a model or seed of "
            "this project");
  fs::remove(dir_ / "models/x.sql");

  Write("models/y.sql", "select 1\n{% if true %}\n{% include 'z.sql' %}\n{% endif %}");
  p = Load();
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.message(), "models/y.sql:3: unsupported construct {% include %}");
  fs::remove(dir_ / "models/y.sql");

  Write("models/bad.yml", "version: 2\nmodels:\n  - name: stg_customers\n   columns: [\n");
  p = Load();
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.message().find("models/bad.yml:4: invalid YAML"), std::string::npos) << p.message();
  fs::remove(dir_ / "models/bad.yml");

  Write("models/more.yml",
        "version: 2\nmodels:\n  - name: stg_customers\n    tests:\n      - frobnicated\n");
  p = Load();
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.message(),
            "models/more.yml:5: unknown data test 'frobnicated' (no built-in, package or {% test "
            "frobnicated(...) %} definition)");
  fs::remove(dir_ / "models/more.yml");

  Write("models/z.sql", "select {{ var('undefined_var') }}");
  p = Load();
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.message(),
            "models/z.sql:1: required var 'undefined_var' not found (set it under vars: in "
            "dbt_project.yml or with --vars)");
  fs::remove(dir_ / "models/z.sql");

  unsetenv("SHOP_PG_HOST");
  p = Load();
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.message().find("profiles.yml:6: env var required but not provided: 'SHOP_PG_HOST'"),
            std::string::npos)
      << p.message();
}

}  // namespace
}  // namespace pdv::transform
