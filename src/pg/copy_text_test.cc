#include "pg/copy_text.h"

#include <gtest/gtest.h>

namespace pdv::pg {
namespace {

TEST(CopyTextLineTest, SplitsAndDecodesEveryEscape) {
  CopyTextLine line;
  ASSERT_TRUE(line.Parse("plain\t\\N\ta\\tb\\nc\\\\d\t\\101\\x42\\7\t\t\\r\\b\\f\\v\\q\n").ok());
  ASSERT_EQ(line.size(), 6u);
  EXPECT_EQ(line.get(0), "plain");
  EXPECT_TRUE(line.is_null(1));
  EXPECT_FALSE(line.is_null(0));
  EXPECT_EQ(line.get(2), "a\tb\nc\\d");
  EXPECT_EQ(line.get(3), std::string("AB\x07"));
  EXPECT_EQ(line.get(4), "");
  EXPECT_FALSE(line.is_null(4)) << "an empty string is not NULL";
  EXPECT_EQ(line.get(5), "\r\b\f\vq");
  EXPECT_TRUE(line.is_null(6)) << "past the end";
}

TEST(CopyTextLineTest, ALoneBackslashIsAnErrorNamingTheColumn) {
  CopyTextLine line;
  Status s = line.Parse("a\tb\\");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("column 2"), std::string::npos) << s.message();
}

TEST(CopyTextLineTest, ViewsOfEscapedFieldsSurviveLaterFields) {
  CopyTextLine line;
  std::string text;
  for (int i = 0; i < 50; ++i) text += (i ? "\t" : "") + std::string("x\\ty");
  ASSERT_TRUE(line.Parse(text).ok());
  ASSERT_EQ(line.size(), 50u);
  for (size_t i = 0; i < line.size(); ++i) EXPECT_EQ(line.get(i), "x\ty");
}

}  // namespace
}  // namespace pdv::pg
