#include "common/time_text.h"

#include <fmt/format.h>

#include <chrono>

namespace pdv {

std::string DateText(int32_t days) {
  std::chrono::year_month_day ymd{std::chrono::sys_days{std::chrono::days{days}}};
  return fmt::format("{:04d}-{:02d}-{:02d}", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
}

std::string TimestampText(int64_t us) {
  constexpr int64_t kDayUs = 86'400'000'000;
  int64_t days = us >= 0 ? us / kDayUs : -((-us + kDayUs - 1) / kDayUs);
  int64_t rest = us - days * kDayUs;
  int64_t secs = rest / 1'000'000;
  return fmt::format("{} {:02d}:{:02d}:{:02d}.{:06d}", DateText(static_cast<int32_t>(days)),
                     secs / 3600, secs / 60 % 60, secs % 60, rest % 1'000'000);
}

std::string UtcText(std::chrono::system_clock::time_point t) {
  return TimestampText(
             std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count()) +
         "Z";
}

}  // namespace pdv
