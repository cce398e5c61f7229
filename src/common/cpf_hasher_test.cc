#include "common/cpf_hasher.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>

namespace pdv {
namespace {

std::string FromHex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

// RFC 4231 section 4 test cases, HMAC-SHA-256 outputs.
TEST(HmacSha256Test, Rfc4231Vectors) {
  struct Case {
    std::string key, data, expected_hex;
  };
  const Case cases[] = {
      {std::string(20, '\x0b'), "Hi There",
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {"Jefe", "what do ya want for nothing?",
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      {std::string(20, '\xaa'), std::string(50, '\xdd'),
       "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
      {FromHex("0102030405060708090a0b0c0d0e0f10111213141516171819"), std::string(50, '\xcd'),
       "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
      {std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First",
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
      {std::string(131, '\xaa'),
       "This is a test using a larger than block-size key and a larger than block-size data. "
       "The key needs to be hashed before being used by the HMAC algorithm.",
       "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(ToHex(HmacSha256(c.key, c.data)), c.expected_hex) << c.data;
  }
  // Test case 5: output truncated to 128 bits.
  EXPECT_EQ(ToHex(HmacSha256(std::string(20, '\x0c'), "Test With Truncation")).substr(0, 32),
            "a3b6167473100ee06e0c796c2955552b");
}

TEST(CpfHasherTest, IsHmacOfTheElevenDigitsInLowercaseHex) {
  const std::string key = "a-platform-secret-key";
  CpfHasher hasher(key);
  auto cpf = Cpf::Parse("529.982.247-25");
  ASSERT_TRUE(cpf.ok());
  std::string hash = hasher.Hash(*cpf);
  EXPECT_EQ(hash, ToHex(HmacSha256(key, "52998224725")));
  EXPECT_EQ(hash.size(), 64u);
  EXPECT_EQ(hash.find_first_not_of("0123456789abcdef"), std::string::npos);
  // Formatted and bare input give the same hash; a copy of the hasher agrees.
  auto raw = hasher.RawHash(*cpf);
  EXPECT_EQ(ToHex(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size())), hash);
  CpfHasher copy(hasher);
  EXPECT_EQ(copy.Hash(*Cpf::Parse("52998224725")), hash);
  // Another key, another hash: never a bare SHA-256 of the CPF.
  EXPECT_NE(CpfHasher("another-secret-key!").Hash(*cpf), hash);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>("52998224725"), 11, digest);
  EXPECT_NE(hash, ToHex(std::string_view(reinterpret_cast<char*>(digest), sizeof(digest))));
}

// The prepared states give OpenSSL's HMAC for keys shorter than, as long as and longer
// than SHA-256's 64-byte block (a longer key is hashed first).
TEST(CpfHasherTest, AgreesWithOneShotHmacForEveryKeyLength) {
  auto cpf = Cpf::Parse("529.982.247-25");
  ASSERT_TRUE(cpf.ok());
  for (size_t length : {1, 20, 63, 64, 65, 131}) {
    std::string key(length, '\0');
    for (size_t i = 0; i < length; ++i) key[i] = static_cast<char>(i * 37 + 11);
    CpfHasher hasher(key);
    EXPECT_EQ(hasher.Hash(*cpf), ToHex(HmacSha256(key, "52998224725"))) << length;
    EXPECT_EQ(hasher.HashDigits("00000000191"), ToHex(HmacSha256(key, "00000000191"))) << length;
  }
}

}  // namespace
}  // namespace pdv
