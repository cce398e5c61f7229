#include "redis/cluster_slots.h"

#include <gtest/gtest.h>

namespace pdv::redis {
namespace {

TEST(ClusterSlotsTest, KeySlotIsRedisCrc16AndHonoursHashTags) {
  EXPECT_EQ(KeySlot("123456789"), 0x31C3);  // CRC16/XMODEM's check value
  EXPECT_EQ(KeySlot("foo"), 12182);         // as CLUSTER KEYSLOT foo
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("{user1000}.followers"));
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("user1000"));
  EXPECT_EQ(KeySlot("foo{}{bar}"), KeySlot("foo{}{bar}"));
  EXPECT_NE(KeySlot("foo{}{bar}"), KeySlot("bar"));  // an empty tag is no tag
}

TEST(ClusterSlotsTest, CommandKey) {
  EXPECT_EQ(CommandKey({"HGET", "pdv:meta", "version"}), "pdv:meta");
  EXPECT_EQ(CommandKey({"evalsha", "abc", "1", "k", "v"}), "k");
  EXPECT_EQ(CommandKey({"EVAL", "return 1", "0"}), std::nullopt);
  EXPECT_EQ(CommandKey({"MEMORY", "USAGE", "k"}), "k");
  EXPECT_EQ(CommandKey({"PUBLISH", "ch", "m"}), std::nullopt);
  EXPECT_EQ(CommandKey({"PING"}), std::nullopt);
}

}  // namespace
}  // namespace pdv::redis
