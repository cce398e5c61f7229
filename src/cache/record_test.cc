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
  EXPECT_LE(bytes.size(), 48u);  // plus 10 bytes of field: the customer in a bucket
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

TEST(RecordTest, EveryKnownCampaignAndALiteralOneRoundTrip) {
  for (std::string campaign : {"organico", "verao", "inverno", "black_friday", "dia_das_maes",
                               "natal", "dia_dos_pais", "volta_as_aulas", "", "outra"}) {
    CustomerRecord r{.ativo = true, .opt_in_marketing = true, .origem_campanha = campaign};
    auto back = Decode(Encode(r));
    ASSERT_TRUE(back.ok()) << campaign;
    EXPECT_EQ(back->origem_campanha, campaign);
    EXPECT_TRUE(back->ativo && back->opt_in_marketing && !back->elegivel_a_partir_de);
  }
}

TEST(RecordTest, EligibilityFarFromTheUpdateRoundTrips) {
  for (auto [atualizado, elegivel] :
       std::vector<std::pair<int64_t, int64_t>>{{1'764'000'000, 1'764'000'000 + 30 * 86400},
                                                {1'764'000'000, 0},
                                                {-2'000'000'000, 4'000'000'000},
                                                {INT64_MAX, INT64_MIN}}) {
    CustomerRecord r{.elegivel_a_partir_de = elegivel, .atualizado_em = atualizado};
    auto back = Decode(Encode(r));
    ASSERT_TRUE(back.ok()) << back.message();
    EXPECT_EQ(back->elegivel_a_partir_de, elegivel);
    EXPECT_EQ(back->atualizado_em, atualizado);
  }
}

TEST(MetaTest, AVersionOfAnOlderRecordFormatIsNotLoaded) {
  auto older = ParseMeta({{"version", "4"}, {"bits", "8"}, {"lsn", "7"}});
  ASSERT_TRUE(older.ok()) << older.message();
  EXPECT_FALSE(older->exists);
  EXPECT_TRUE(older->older_format);
  EXPECT_EQ(older->layout.version, 4u) << "kept, so a full load writes the next one";
  auto current =
      ParseMeta({{"version", "5"}, {"bits", "8"}, {"format", std::to_string(kRecordFormat)}});
  ASSERT_TRUE(current.ok()) << current.message();
  EXPECT_TRUE(current->exists);
  EXPECT_FALSE(current->older_format);
  EXPECT_FALSE(ParseMeta({{"version", "5"}, {"bits", "8"}, {"format", "two"}}).ok());
  EXPECT_FALSE(ParseMeta({}).value().exists);
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
  EXPECT_EQ(Layout::CpfField(hash).size(), 10u);
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

TEST(LayoutTest, AnInvalidatedKeyNamesItsCpfBucket) {
  Layout layout{.version = 12, .bits = 10};
  for (uint32_t b : {0u, 1u, 0x3ffu}) {
    EXPECT_EQ(Layout::CpfBucketOfKey(layout.CpfBucketKey(b)), b);
  }
  EXPECT_EQ(Layout::CpfBucketOfKey(layout.IdBucketKey(5)), std::nullopt);
  EXPECT_EQ(Layout::CpfBucketOfKey("pdv:meta"), std::nullopt);
  EXPECT_EQ(Layout::CpfBucketOfKey("pdv:c:v:{1}"), std::nullopt);
  EXPECT_EQ(Layout::CpfBucketOfKey("pdv:c:vx:{1}"), std::nullopt);
  EXPECT_EQ(Layout::CpfBucketOfKey("pdv:c:v1:{}"), std::nullopt);
  EXPECT_EQ(Layout::CpfBucketOfKey("pdv:c:v1:{1g}"), std::nullopt);
  EXPECT_EQ(Layout::CpfBucketOfKey("pdv:c:v1:{1"), std::nullopt);
}

}  // namespace
}  // namespace pdv::cache
