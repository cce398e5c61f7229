#include "api/near_cache.h"

#include <gtest/gtest.h>

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

TEST(NearCacheTest, BoundedSize) {
  NearCache nc(10);
  for (int i = 0; i < 25; ++i) nc.Put(HashOf(static_cast<uint8_t>(i)), 1, 0, {}, nc.Take(0));
  EXPECT_LE(nc.size(), 10u);
  EXPECT_NE(nc.Get(HashOf(24), 1, 0), nullptr);
}

}  // namespace
}  // namespace pdv::api
