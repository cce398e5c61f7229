#include "api/near_cache.h"

#include <gtest/gtest.h>

#include <cstring>

namespace pdv::api {
namespace {

NearCache::Hash HashOf(uint8_t n) {
  NearCache::Hash h{};
  h.fill(n);
  return h;
}

TEST(NearCacheTest, InvalidationDropsTheBucketAndRacesAreLost) {
  NearCache nc;
  cache::CustomerRecord a{.primeiro_nome = "Ana"};
  const auto h1 = HashOf(1), h2 = HashOf(2);
  nc.Put(h1, 7, 1, a, nc.Take(1));
  nc.Put(h2, 7, 1, a, nc.Take(1));
  ASSERT_NE(nc.Get(h1, 7, 1), nullptr);
  EXPECT_EQ(nc.Get(h1, 7, 1)->primeiro_nome, "Ana");
  // Another version's lookup of the same CPF is not served from this one.
  EXPECT_EQ(nc.Get(h1, 8, 1), nullptr);
  // The bucket's invalidation drops every record of it.
  nc.Invalidate(1);
  EXPECT_EQ(nc.Get(h1, 7, 1), nullptr);
  EXPECT_EQ(nc.Get(h2, 7, 1), nullptr);
  // A read sent before an invalidation of its bucket is not cached.
  auto before = nc.Take(1);
  nc.Invalidate(1);
  nc.Put(h1, 7, 1, a, before);
  EXPECT_EQ(nc.Get(h1, 7, 1), nullptr);
  // Also for a bucket never invalidated before.
  auto fresh = nc.Take(300);
  nc.Invalidate(300);
  nc.Put(h2, 7, 300, a, fresh);
  EXPECT_EQ(nc.Get(h2, 7, 300), nullptr);
  // Another bucket's invalidation leaves a record alone.
  nc.Put(h1, 7, 2, a, nc.Take(2));
  nc.Invalidate(3);
  EXPECT_NE(nc.Get(h1, 7, 2), nullptr);
  // Clear beats every ticket taken before it.
  auto old = nc.Take(4);
  nc.Clear();
  EXPECT_EQ(nc.Get(h1, 7, 2), nullptr);
  nc.Put(h1, 7, 4, a, old);
  EXPECT_EQ(nc.Get(h1, 7, 4), nullptr);
  nc.Put(h1, 7, 4, a, nc.Take(4));
  EXPECT_NE(nc.Get(h1, 7, 4), nullptr);
  EXPECT_EQ(nc.size(), 1u);
}

TEST(NearCacheTest, EveryRecordIsFoundAsTheTableGrowsAndTagsCollide) {
  NearCache nc;
  auto hash = [](uint32_t i, bool collide) {
    NearCache::Hash h{};
    std::memcpy(h.data(), &i, sizeof(i));                     // bytes 0-3 differ: the key
    if (!collide) std::memcpy(h.data() + 16, &i, sizeof(i));  // the probe's bytes
    return h;
  };
  for (uint32_t i = 1; i <= 5000; ++i) {
    cache::CustomerRecord r{.lsn = i};
    nc.Put(hash(i, false), 1, 0, r, nc.Take(0));
    nc.Put(hash(i, true), 1, 0, cache::CustomerRecord{.lsn = i + 100'000}, nc.Take(0));
  }
  EXPECT_EQ(nc.size(), 10'000u);
  for (uint32_t i = 1; i <= 5000; ++i) {
    const auto* a = nc.Get(hash(i, false), 1, 0);
    const auto* b = nc.Get(hash(i, true), 1, 0);
    ASSERT_NE(a, nullptr) << i;
    ASSERT_NE(b, nullptr) << i;
    EXPECT_EQ(a->lsn, i);
    EXPECT_EQ(b->lsn, i + 100'000);
  }
  // A put of a cached hash replaces its record in place.
  nc.Put(hash(7, false), 1, 0, cache::CustomerRecord{.lsn = 42}, nc.Take(0));
  EXPECT_EQ(nc.size(), 10'000u);
  EXPECT_EQ(nc.Get(hash(7, false), 1, 0)->lsn, 42u);
  EXPECT_EQ(nc.Get(hash(5001, false), 1, 0), nullptr);
}

TEST(NearCacheTest, BoundedSize) {
  NearCache nc(10);
  for (int i = 0; i < 25; ++i) nc.Put(HashOf(static_cast<uint8_t>(i)), 1, 0, {}, nc.Take(0));
  EXPECT_LE(nc.size(), 10u);
  EXPECT_NE(nc.Get(HashOf(24), 1, 0), nullptr);
}

}  // namespace
}  // namespace pdv::api
