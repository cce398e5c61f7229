#include "transform/secret_mask.h"

#include <gtest/gtest.h>

namespace pdv::transform {
namespace {

TEST(SecretMaskTest, ScrubsEveryDbtEnvSecretValueAndNothingElse) {
  const char* env[] = {"DBT_ENV_SECRET_GIT_TOKEN=ghp_abc123",
                       "DBT_ENV_SECRET_EMPTY=", "DBT_ENV_REGION=sul",
                       "PDV_CPF_KEY=not-a-dbt-secret", nullptr};
  SecretMask mask = SecretMask::FromEnvironment(env);
  EXPECT_EQ(mask.Scrub("https://x:ghp_abc123@host/r.git and ghp_abc123 again, region sul"),
            "https://x:*****@host/r.git and ***** again, region sul");
  EXPECT_EQ(mask.Scrub(""), "");
  EXPECT_TRUE(SecretMask::FromEnvironment(nullptr).empty());
  EXPECT_TRUE(SecretMask::Of({""}).empty());
}

TEST(SecretMaskTest, LongerSecretsFirstAndJsonSpellingsToo) {
  SecretMask mask = SecretMask::Of({"abc", "abcdef", "q\"uo\\te"});
  EXPECT_EQ(mask.Scrub("abcdef abc"), "***** *****");
  // As nlohmann::json::dump() writes the value inside an artifact.
  EXPECT_EQ(mask.Scrub(R"({"sql": "select 'q\"uo\\te'"})"), R"({"sql": "select '*****'"})");
  EXPECT_EQ(mask.Scrub("raw q\"uo\\te"), "raw *****");
}

}  // namespace
}  // namespace pdv::transform
