#include "transform/seed_file.h"

#include <gtest/gtest.h>

namespace pdv::transform {
namespace {

TEST(SeedFile, InfersTypesAndKeepsQuotedValues) {
  auto f = SeedFile::Parse(
      "id,name,price,ok,day,at,note\n"
      "1,\"Silva, Ana\",1.50,true,2024-01-02,2024-01-02 10:00:00,\n"
      "12345678901,\"say \"\"hi\"\"\",2,False,2024-02-03,2024-02-03T11:30,\"\"\n",
      "seeds/x.csv", {{"note", "varchar(10)"}});
  ASSERT_TRUE(f.ok()) << f.message();
  using K = SeedColumnType;
  EXPECT_EQ(f->kinds, (std::vector<K>{K::kBigInteger, K::kText, K::kNumber, K::kBoolean, K::kDate,
                                      K::kTimestamp, K::kText}));
  EXPECT_EQ(f->types, (std::vector<std::string>{"", "", "", "", "", "", "varchar(10)"}));
  auto named = f->SqlTypes([](K k) { return k == K::kText ? "text" : "other"; });
  EXPECT_EQ(named[1], "text");
  EXPECT_EQ(named[0], "other");
  EXPECT_EQ(named[6], "varchar(10)");
  EXPECT_EQ(f->rows[1][1], "say \"hi\"");
  EXPECT_TRUE(f->nulls[0][6]);   // empty and unquoted: NULL
  EXPECT_FALSE(f->nulls[1][6]);  // "": the empty string
  EXPECT_EQ(
      f->CopyData(),
      "\"1\",\"Silva, Ana\",\"1.50\",\"true\",\"2024-01-02\",\"2024-01-02 10:00:00\",\n"
      "\"12345678901\",\"say \"\"hi\"\"\",\"2\",\"False\",\"2024-02-03\",\"2024-02-03T11:30\","
      "\"\"\n");
}

TEST(SeedFile, ErrorsNameFileAndLine) {
  EXPECT_EQ(SeedFile::Parse("a,b\n1,2\n3\n", "seeds/x.csv", {}).message(),
            "seeds/x.csv:3: 1 fields, the header has 2");
  EXPECT_EQ(SeedFile::Parse("a,b\n1,\"open\n", "seeds/x.csv", {}).message(),
            "seeds/x.csv:2: unterminated quoted field");
  EXPECT_EQ(SeedFile::Parse("", "seeds/x.csv", {}).message(),
            "seeds/x.csv: empty seed (no header row)");
  EXPECT_EQ(SeedFile::Parse("a,,c\n", "seeds/x.csv", {}).message(),
            "seeds/x.csv:1: column 2 has no name");
}

}  // namespace
}  // namespace pdv::transform
