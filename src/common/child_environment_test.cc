#include "common/child_environment.h"

#include <gtest/gtest.h>

namespace pdv {
namespace {

TEST(ChildEnvironmentTest, FilterKeepsOrderAndDropsRefusedAndMalformedEntries) {
  const char* env[] = {"PATH=/usr/bin", "PDV_CPF_KEY=k", "NOEQUALS", "=x", "A=b=c", nullptr};
  EXPECT_EQ(FilterEnvironment(env, HelperMayInherit),
            (std::vector<std::string>{"PATH=/usr/bin", "A=b=c"}));
  EXPECT_TRUE(FilterEnvironment(nullptr, HelperMayInherit).empty());
}

TEST(ChildEnvironmentTest, HelpersSeeNoPlatformOrDbtSecret) {
  EXPECT_FALSE(HelperMayInherit("PDV_CPF_KEY"));
  EXPECT_FALSE(HelperMayInherit("PDV_WAREHOUSE_URL"));
  EXPECT_FALSE(HelperMayInherit("DBT_ENV_SECRET_GIT_TOKEN"));
  EXPECT_TRUE(HelperMayInherit("DBT_ENV_REGION"));
  EXPECT_TRUE(HelperMayInherit("HOME"));
  EXPECT_TRUE(HelperMayInherit("GIT_SSH_COMMAND"));
}

TEST(ChildEnvironmentTest, StagesGetOnlyWhatAnyProcessNeeds) {
  for (const char* name :
       {"PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SSL_CERT_FILE",
        "ASAN_OPTIONS", "UBSAN_OPTIONS", "PDV_TRANSFORM_TRACE"}) {
    EXPECT_TRUE(StageMayInherit(name)) << name;
  }
  for (const char* name : {"PDV_CPF_KEY", "PDV_ERASURE_KEY", "PDV_WAREHOUSE_URL", "PDV_REDIS_URL",
                           "PDV_CONFIG", "DBT_ENV_SECRET_TOKEN", "PGPASSWORD",
                           "AWS_SECRET_ACCESS_KEY", "X_SAN_OPTIONS_NOT", "MY_ASAN_OPTIONS"}) {
    EXPECT_FALSE(StageMayInherit(name)) << name;
  }
}

}  // namespace
}  // namespace pdv
