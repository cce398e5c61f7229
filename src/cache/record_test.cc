#include "cache/record.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <set>

namespace pdv::cache {
namespace {

TEST(RecordTest, RoundTripAndLsnOrderIsByteOrder) {
  CustomerRecord r{.lsn = 0x0000000100000002ull,
                   .cliente_id = *UuidBytes("12345678-9abc-4def-8001-020304050607"),
                   .ativo = true,
                   .opt_in_marketing = true,
                   .elegivel_a_partir_de = 1'764'000'300,
                   .atualizado_em = 1'764'000'000,
                   .ticket_centavos = 12345,
                   .origem_campanha = "black_friday",
                   .primeiro_nome = "Antônia"};
  std::string bytes = Encode(r);
  auto back = Decode(bytes);
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(*back, r);
  EXPECT_LE(bytes.size(), 50u);  // plus 12 bytes of field: the customer in a bucket
  CustomerRecord newer = r;
  newer.lsn += 1;
  EXPECT_LT(bytes.substr(0, 8), Encode(newer).substr(0, 8));
  r.elegivel_a_partir_de.reset();
  r.ativo = false;
  EXPECT_EQ(*Decode(Encode(r)), r);
  EXPECT_EQ(UuidText(r.cliente_id), "12345678-9abc-4def-8001-020304050607");
  r.origem_campanha = "campanha_nova_2027";  // not in the table: stored as text
  EXPECT_EQ(*Decode(Encode(r)), r);
}

TEST(RecordTest, CorruptBytesAreErrors) {
  std::string bytes = Encode(CustomerRecord{.primeiro_nome = "Ana"});
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(Decode(std::string_view(bytes).substr(0, n)).ok()) << n;
  }
  EXPECT_FALSE(Decode(bytes + "x").ok());
  EXPECT_FALSE(HashBytes("abc").ok());
  EXPECT_FALSE(HashBytes(std::string(64, 'g')).ok());
  EXPECT_FALSE(UuidBytes("not-a-uuid").ok());
}

TEST(LayoutTest, KeysCarryHashTagsAndBucketsFollowBits) {
  auto hash = *HashBytes(std::string(64, 'f'));
  Layout layout{.version = 3, .bits = 8};
  EXPECT_EQ(layout.CpfKey(hash).rfind("pdv:c:v3:{", 0), 0u);
  EXPECT_EQ(layout.CpfKey(hash).back(), '}');
  EXPECT_EQ(Layout::CpfField(hash).size(), 12u);
  auto id = *UuidBytes("00000000-0000-4000-8000-000000000000");
  EXPECT_EQ(layout.IdKey(id).rfind("pdv:i:v3:{", 0), 0u);
  // Sequential ids spread over the buckets.
  std::set<std::string> buckets;
  for (int i = 0; i < 1000; ++i) {
    auto seq = *UuidBytes(fmt::format("{:08x}-0000-4000-8000-000000000000", i));
    buckets.insert(layout.IdKey(seq));
  }
  EXPECT_GT(buckets.size(), 200u);
  EXPECT_EQ(BucketBitsFor(0), 4);
  EXPECT_EQ(BucketBitsFor(100'000), 10);  // about 128 customers a bucket
  EXPECT_EQ(BucketBitsFor(1'000'000), 13);
}

}  // namespace
}  // namespace pdv::cache
