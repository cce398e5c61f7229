#include "cache/bucket_batch.h"

#include <gtest/gtest.h>

#include <map>

namespace pdv::cache {
namespace {

TEST(BucketBatchTest, OneHsetPerBucketWithEveryFieldAndValueInOrder) {
  BucketBatch batch(1 << 20);
  batch.Add(7, "f1", "v1");
  batch.Add(3, "g1", "");
  batch.Add(7, "f2", std::string("v\0 2", 4));
  EXPECT_EQ(batch.fields(), 3u);
  std::map<std::string, std::vector<std::string>> sent;
  auto text = [](uint64_t key) { return key == 7 ? std::string("a") : std::string("b"); };
  batch.Flush(text, [&](const std::vector<std::string_view>& args) {
    ASSERT_GE(args.size(), 4u);
    EXPECT_EQ(args[0], "HSET");
    sent[std::string(args[1])] = std::vector<std::string>(args.begin() + 2, args.end());
  });
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent["a"], (std::vector<std::string>{"f1", "v1", "f2", std::string("v\0 2", 4)}));
  EXPECT_EQ(sent["b"], (std::vector<std::string>{"g1", ""}));
  EXPECT_EQ(batch.fields(), 0u);
  int again = 0;
  batch.Flush(text, [&](const std::vector<std::string_view>&) { ++again; });
  EXPECT_EQ(again, 0);
}

TEST(BucketBatchTest, FullOnceItHoldsItsBytes) {
  BucketBatch batch(1000);
  int added = 0;
  while (!batch.full()) {
    batch.Add(added % 3, std::string(10, 'f'), std::string(50, 'v'));
    ++added;
  }
  EXPECT_GT(added, 5);
  EXPECT_LT(added, 20);
  EXPECT_EQ(batch.fields(), static_cast<size_t>(added));
}

}  // namespace
}  // namespace pdv::cache
