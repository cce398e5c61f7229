#include "transform/env_access.h"

#include <gtest/gtest.h>

namespace pdv::transform {
namespace {

TEST(EnvAccessTest, NoFileReadsPdvVariables) {
  for (EnvScope scope : {EnvScope::kProfiles, EnvScope::kPackages, EnvScope::kProject}) {
    std::string why = EnvVarRefusal("PDV_CPF_KEY", scope, {"PDV_CPF_KEY"});
    EXPECT_NE(why.find("PDV_* variables are the platform's"), std::string::npos) << why;
    EXPECT_FALSE(EnvVarRefusal("PDV_WAREHOUSE_URL", scope, {}).empty());
  }
}

TEST(EnvAccessTest, SecretsOnlyInProfilesAndPackages) {
  EXPECT_EQ(EnvVarRefusal("DBT_ENV_SECRET_GIT_TOKEN", EnvScope::kProfiles, {}), "");
  EXPECT_EQ(EnvVarRefusal("DBT_ENV_SECRET_GIT_TOKEN", EnvScope::kPackages, {}), "");
  EXPECT_EQ(EnvVarRefusal("DBT_ENV_SECRET_X", EnvScope::kProject, {"DBT_ENV_SECRET_X"}),
            "env_var('DBT_ENV_SECRET_X'): Secret env vars are allowed only in profiles.yml or "
            "packages.yml");
}

TEST(EnvAccessTest, ProjectFilesSeeDbtEnvAndDeclaredOnly) {
  EXPECT_EQ(EnvVarRefusal("DBT_ENV_REGION", EnvScope::kProject, {}), "");
  EXPECT_EQ(EnvVarRefusal("STORE_REGION", EnvScope::kProject, {"STORE_REGION"}), "");
  EXPECT_NE(EnvVarRefusal("STORE_REGION", EnvScope::kProject, {}).find("only DBT_ENV_*"),
            std::string::npos);
  EXPECT_EQ(EnvVarRefusal("SHOP_PG_HOST", EnvScope::kProfiles, {}), "");
  EXPECT_EQ(EnvVarRefusal("FIXTURE_DATES_GIT", EnvScope::kPackages, {}), "");
}

TEST(EnvAccessTest, NoSecretCanBeDeclared) {
  for (const char* name :
       {"PDV_CPF_KEY", "PDV_WAREHOUSE_URL", "DBT_ENV_SECRET_X", "SHOP_PG_PASSWORD"}) {
    EXPECT_NE(EnvVarDeclarationRefusal(name).find("a secret cannot be made readable"),
              std::string::npos)
        << name;
  }
  EXPECT_EQ(EnvVarDeclarationRefusal("STORE_REGION"), "");
}

}  // namespace
}  // namespace pdv::transform
