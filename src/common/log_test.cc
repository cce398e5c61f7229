#include "common/log.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace pdv {
namespace {

TEST(LogTest, KeyValueLineWithQuotingAndRedaction) {
  Logger log(stderr, "generate");
  std::string line = log.Format(LogLevel::kInfo, "connected",
                                {{"url", "postgresql://pdv:hunter2@db:5432/source_db"},
                                 {"cpf_key", "super-secret-value"},
                                 {"cpf", "52998224725"},
                                 {"cpf_hash", "ab12"},
                                 {"note", "two words"},
                                 {"rows", int64_t{42}},
                                 {"ok", true}},
                                false);
  EXPECT_EQ(line,
            "level=info component=generate event=connected "
            "url=postgresql://pdv:***@db:5432/source_db cpf_key=[redacted] cpf=[redacted] "
            "cpf_hash=ab12 note=\"two words\" rows=42 ok=true\n");
}

TEST(LogTest, JsonLineIsOneValidObject) {
  Logger log(stderr, "cdc", LogFormat::kJson);
  std::string line = log.Format(LogLevel::kWarn, "retry",
                                {{"attempt", 3}, {"error", "line1\nline2"}, {"rate", 1.5}}, true);
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["level"], "warn");
  EXPECT_EQ(j["event"], "retry");
  EXPECT_EQ(j["attempt"], 3);
  EXPECT_EQ(j["error"], "line1\nline2");
  EXPECT_DOUBLE_EQ(j["rate"].get<double>(), 1.5);
  EXPECT_TRUE(j.contains("ts"));
}

TEST(LogTest, RedactUrl) {
  EXPECT_EQ(RedactUrl("redis://:pw@h:6379/0"), "redis://:***@h:6379/0");
  EXPECT_EQ(RedactUrl("postgresql://u@h/db"), "postgresql://u@h/db");
  EXPECT_EQ(RedactUrl("host=x password=y port=1"), "host=x password=*** port=1");
  // In a URL's query string, and every occurrence (issue 11).
  EXPECT_EQ(RedactUrl("postgresql://u@h/db?sslmode=require&password=s3cret&port=5"),
            "postgresql://u@h/db?sslmode=require&password=***&port=5");
  EXPECT_EQ(RedactUrl("postgresql://u:a@h/db?password=b"), "postgresql://u:***@h/db?password=***");
  EXPECT_EQ(RedactUrl("password=a password=b"), "password=*** password=***");
}

}  // namespace
}  // namespace pdv
