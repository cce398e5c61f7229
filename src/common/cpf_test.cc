#include "common/cpf.h"

#include <gtest/gtest.h>

namespace pdv {
namespace {

TEST(CpfTest, AcceptsKnownValidBareAndFormatted) {
  for (const char* bare : {"52998224725", "11144477735", "12345678909", "00000000191"}) {
    auto cpf = Cpf::Parse(bare);
    ASSERT_TRUE(cpf.ok()) << bare << ": " << cpf.message();
    EXPECT_EQ(cpf->digits(), bare);
    auto again = Cpf::Parse(cpf->formatted());
    ASSERT_TRUE(again.ok()) << cpf->formatted();
    EXPECT_EQ(*again, *cpf);
  }
  EXPECT_EQ(Cpf::Parse("52998224725")->formatted(), "529.982.247-25");
}

TEST(CpfTest, CheckDigitEdges) {
  // First check digit where 10*sum % 11 == 10 (becomes 0), == 0; same for the second.
  for (const char* v :
       {"10000000108", "10000000604", "10000000280", "10000002810", "123.456.789-09"}) {
    EXPECT_TRUE(Cpf::Parse(v).ok()) << v;
  }
  // The same numbers with each check digit off by one.
  EXPECT_EQ(Cpf::Parse("10000000118").message(), "invalid CPF: first check digit is wrong");
  EXPECT_EQ(Cpf::Parse("10000000109").message(), "invalid CPF: second check digit is wrong");
  EXPECT_EQ(Cpf::Parse("10000002811").message(), "invalid CPF: second check digit is wrong");
  EXPECT_EQ(Cpf::Parse("52998224735").message(), "invalid CPF: first check digit is wrong");
  EXPECT_EQ(Cpf::Parse("529.982.247-26").message(), "invalid CPF: second check digit is wrong");
}

TEST(CpfTest, RejectsEveryDigitTheSame) {
  for (char d = '0'; d <= '9'; ++d) {
    std::string same(11, d);
    EXPECT_EQ(Cpf::Parse(same).message(), "invalid CPF: all digits are the same") << same;
  }
  EXPECT_FALSE(Cpf::Parse("111.111.111-11").ok());
}

TEST(CpfTest, NamesTheProblem) {
  EXPECT_EQ(Cpf::Parse("").message(),
            "invalid CPF: expected 11 digits or 000.000.000-00 (14 characters), got 0 characters");
  EXPECT_NE(Cpf::Parse("5299822472").message().find("got 10 characters"), std::string::npos);
  EXPECT_NE(Cpf::Parse("529982247251").message().find("got 12 characters"), std::string::npos);
  EXPECT_EQ(Cpf::Parse("5299822472a").message(), "invalid CPF: character 11 is not a digit");
  EXPECT_EQ(Cpf::Parse("529-982.247-25").message(),
            "invalid CPF: character 4 must be '.' in the form 000.000.000-00");
  EXPECT_EQ(Cpf::Parse("529.982.247.25").message(),
            "invalid CPF: character 12 must be '-' in the form 000.000.000-00");
  EXPECT_EQ(Cpf::Parse("529.98x.247-25").message(), "invalid CPF: character 7 is not a digit");
  EXPECT_FALSE(Cpf::Parse(" 52998224725").ok());
  EXPECT_FALSE(Cpf::Parse("529 982 247 25").ok());
  EXPECT_FALSE(Cpf::Parse(std::string_view("5299822\0725", 11)).ok());
}

TEST(CpfTest, FromBaseComputesCheckDigits) {
  EXPECT_EQ(Cpf::FromBase(529982247)->digits(), "52998224725");
  EXPECT_EQ(Cpf::FromBase(1)->digits(), "00000000191");
  EXPECT_FALSE(Cpf::FromBase(222222222).ok());
  EXPECT_FALSE(Cpf::FromBase(0).ok());
  EXPECT_FALSE(Cpf::FromBase(1'000'000'000).ok());
  // Every base built is accepted by the parser.
  for (uint32_t base = 0; base < 999'999'999; base += 7'777'777) {
    auto cpf = Cpf::FromBase(base);
    if (!cpf.ok()) continue;
    EXPECT_TRUE(Cpf::Parse(cpf->digits()).ok()) << cpf->digits();
  }
}

}  // namespace
}  // namespace pdv
