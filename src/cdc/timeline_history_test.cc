#include "cdc/timeline_history.h"

#include <gtest/gtest.h>

namespace pdv::cdc {
namespace {

TEST(TimelineHistoryTest, SwitchPointOfEachAncestorTimeline) {
  // As TIMELINE_HISTORY 3 returns it after two promotions.
  const char* history =
      "1\t0/4427410\tno recovery target specified\n"
      "\n"
      "2\t0/5A000A0\tno recovery target specified\n";
  EXPECT_EQ(TimelineSwitchPoint(history, 1), ParseLsn("0/4427410"));
  EXPECT_EQ(TimelineSwitchPoint(history, 2), ParseLsn("0/5A000A0"));
  EXPECT_EQ(TimelineSwitchPoint(history, 3), std::nullopt);  // the current one: no end
  EXPECT_EQ(TimelineSwitchPoint("", 1), std::nullopt);
  EXPECT_EQ(TimelineSwitchPoint("# comment\n1 not-an-lsn reason\n", 1), std::nullopt);
  EXPECT_EQ(TimelineSwitchPoint("  1  1/0  reason", 1), ParseLsn("1/0"));
}

}  // namespace
}  // namespace pdv::cdc
