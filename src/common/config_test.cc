#include "common/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace pdv {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("pdv-config-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& text) {
    auto path = (dir_ / "pdv.yaml").string();
    std::ofstream(path) << text;
    return path;
  }
  std::filesystem::path dir_;
};

TEST_F(ConfigTest, FlagOverridesEnvironmentOverridesFileOverridesDefault) {
  ConfigSources sources;
  sources.file = Write("listen: 127.0.0.1:9000\ngenerate:\n  seed: 7\n  rate: 5\n");
  sources.env = {{"PDV_GENERATE_SEED", "8"}, {"PDV_GENERATE_RATE", "6"}};
  sources.flags = {{"generate.rate", {"9.5", "--rate"}}};
  auto config = Config::Load(sources);
  ASSERT_TRUE(config.ok()) << config.message();
  EXPECT_EQ(config->Get("listen"), "127.0.0.1:9000");
  EXPECT_EQ(config->SourceOf("listen"), "file " + *sources.file + ":1");
  EXPECT_EQ(config->GetInt("generate.seed"), 8);
  EXPECT_EQ(config->SourceOf("generate.seed"), "environment PDV_GENERATE_SEED");
  EXPECT_DOUBLE_EQ(config->GetDouble("generate.rate"), 9.5);
  EXPECT_EQ(config->SourceOf("generate.rate"), "flag --rate");
  EXPECT_EQ(config->Get("redis_url"), "redis://127.0.0.1:6379/0");
  EXPECT_EQ(config->SourceOf("redis_url"), "default");
}

TEST_F(ConfigTest, BadValueNamesKeyAndSource) {
  ConfigSources sources;
  sources.file = Write("generate:\n  rate: fast\n");
  auto config = Config::Load(sources);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.message(), "config: generate.rate from file " + *sources.file +
                                  ":2: expected a number from 0 to 1000000, got 'fast'");

  sources = {};
  sources.env = {{"PDV_LISTEN", "localhost"}};
  EXPECT_EQ(Config::Load(sources).message(),
            "config: listen from environment PDV_LISTEN: expected host:port, got 'localhost'");

  sources = {};
  sources.flags = {{"oltp_url", {"postgresql://h:5432/db?nosuchoption=1", "--oltp-url"}}};
  auto bad_url = Config::Load(sources);
  ASSERT_FALSE(bad_url.ok());
  EXPECT_EQ(bad_url.message().rfind("config: oltp_url from flag --oltp-url: not a valid ", 0), 0u)
      << bad_url.message();

  sources = {};
  sources.env = {{"PDV_REDIS_URL", "http://x"}};
  EXPECT_EQ(Config::Load(sources).message(),
            "config: redis_url from environment PDV_REDIS_URL: expected "
            "redis[s]://[user:password@]host:port[/db][?ca_cert=PATH]: not a redis:// or rediss:// "
            "URL");

  // Issue 30 (8): names written into replication commands are checked, not trusted.
  for (const char* bad : {"pdv_pub' , 'x", "Slot", "1slot", "a\"b", ""}) {
    sources = {};
    sources.env = {{"PDV_CDC_PUBLICATION", bad}};
    EXPECT_NE(Config::Load(sources).message().find(
                  "config: cdc.publication from environment PDV_CDC_PUBLICATION: expected a name "
                  "of lowercase letters, digits and _"),
              std::string::npos)
        << bad;
    sources = {};
    sources.flags = {{"cdc.slot", {bad, "--slot"}}};
    EXPECT_FALSE(Config::Load(sources).ok()) << bad;
  }
  sources = {};
  sources.flags = {{"cdc.slot", {"pdv_slot_2", "--slot"}}};
  EXPECT_TRUE(Config::Load(sources).ok());
}

TEST_F(ConfigTest, SecretsAreNeverEchoed) {
  ConfigSources sources;
  sources.env = {{"PDV_CPF_KEY", "short-s3cret"}};
  auto config = Config::Load(sources);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.message().find("s3cret"), std::string::npos) << config.message();
  EXPECT_NE(config.message().find("cpf_key from environment PDV_CPF_KEY"), std::string::npos);
}

TEST_F(ConfigTest, FileProblemsNameFileAndLine) {
  ConfigSources sources;
  sources.file = Write("listen: 127.0.0.1:1\nlisten_adress: x\n");
  EXPECT_EQ(Config::Load(sources).message(),
            "config: " + *sources.file + ":2: unknown key 'listen_adress'");
  sources.file = Write("a: [1, 2\n");
  auto broken = Config::Load(sources);
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.message().rfind("config: " + *sources.file + ":", 0), 0u) << broken.message();
  sources.file = (dir_ / "missing.yaml").string();
  EXPECT_EQ(Config::Load(sources).message(), "config: file " + *sources.file + " does not exist");
}

TEST_F(ConfigTest, RequireSaysHowToSetAMissingKey) {
  auto config = Config::Load({});
  ASSERT_TRUE(config.ok()) << config.message();
  auto key = config->Require("cpf_key");
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.message(),
            "config: cpf_key is not set (set it in pdv.yaml, with PDV_CPF_KEY or with its flag)");
}

TEST(ConfigKeysTest, EnvironmentNames) {
  EXPECT_EQ(EnvVarFor("oltp_url"), "PDV_OLTP_URL");
  EXPECT_EQ(EnvVarFor("generate.delete_share"), "PDV_GENERATE_DELETE_SHARE");
}

}  // namespace
}  // namespace pdv
