#include "api/deadlines.h"

#include <gtest/gtest.h>

namespace pdv::api {
namespace {

using namespace std::chrono_literals;

TEST(DeadlinesTest, ExpiresOnlyWhatIsPastAndReusesSlots) {
  Deadlines d;
  const auto t0 = Deadlines::Clock::time_point{} + 1h;
  uint32_t a = d.Add(), b = d.Add(), c = d.Add();
  EXPECT_EQ(d.size(), 3u);
  d.Set(a, t0 + 1s);
  d.Set(b, t0 + 5s);  // c: no deadline
  std::vector<uint32_t> expired;
  auto collect = [&](uint32_t slot) { expired.push_back(slot); };
  d.ExpireAt(t0, collect);
  EXPECT_TRUE(expired.empty());
  d.ExpireAt(t0 + 1s, collect);
  EXPECT_EQ(expired, std::vector<uint32_t>{a});
  d.ExpireAt(t0 + 2s, collect);  // a's deadline was cleared: not again
  EXPECT_EQ(expired, std::vector<uint32_t>{a});
  d.Set(b, t0 + 3s);  // moved (a request arrived): the new deadline counts
  d.ExpireAt(t0 + 4s, collect);
  EXPECT_EQ(expired, (std::vector<uint32_t>{a, b}));
  // A removed slot is handed out again, without the deadline it had.
  d.Set(c, t0);
  d.Remove(c);
  EXPECT_EQ(d.size(), 2u);
  EXPECT_EQ(d.Add(), c);
  d.ExpireAt(t0 + 10s, collect);
  EXPECT_EQ(expired, (std::vector<uint32_t>{a, b}));
}

}  // namespace
}  // namespace pdv::api
