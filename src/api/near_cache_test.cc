#include "api/near_cache.h"

#include <gtest/gtest.h>

namespace pdv::api {
namespace {

TEST(NearCacheTest, InvalidationDropsTheBucketAndRacesAreLost) {
  NearCache nc;
  cache::CustomerRecord a{.primeiro_nome = "Ana"};
  auto t = nc.Take("b1");
  nc.Put("b1", "f1", a, t);
  ASSERT_NE(nc.Get("b1", "f1"), nullptr);
  EXPECT_EQ(nc.Get("b1", "f1")->primeiro_nome, "Ana");
  nc.Invalidate("b1");
  EXPECT_EQ(nc.Get("b1", "f1"), nullptr);
  // A read sent before an invalidation of its bucket is not cached.
  auto before = nc.Take("b1");
  nc.Invalidate("b1");
  nc.Put("b1", "f1", a, before);
  EXPECT_EQ(nc.Get("b1", "f1"), nullptr);
  // Also for a bucket never seen before.
  auto fresh = nc.Take("b2");
  nc.Invalidate("b2");
  nc.Put("b2", "f", a, fresh);
  EXPECT_EQ(nc.Get("b2", "f"), nullptr);
  // Clear beats every ticket taken before it.
  auto old = nc.Take("b3");
  nc.Clear();
  nc.Put("b3", "f", a, old);
  EXPECT_EQ(nc.Get("b3", "f"), nullptr);
  nc.Put("b3", "f", a, nc.Take("b3"));
  EXPECT_EQ(nc.size(), 1u);
}

TEST(NearCacheTest, BoundedSize) {
  NearCache nc(10);
  for (int i = 0; i < 25; ++i) nc.Put("b", std::to_string(i), {}, nc.Take("b"));
  EXPECT_LE(nc.size(), 10u);
}

}  // namespace
}  // namespace pdv::api
