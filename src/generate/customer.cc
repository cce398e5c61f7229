#include "generate/customer.h"

#include <fmt/format.h>

#include <chrono>

namespace pdv::generate {

std::string UuidText(const std::array<uint8_t, 16>& id) {
  std::string hex = fmt::format("{:02x}", fmt::join(id, ""));
  return fmt::format("{}-{}-{}-{}-{}", hex.substr(0, 8), hex.substr(8, 4), hex.substr(12, 4),
                     hex.substr(16, 4), hex.substr(20));
}

std::string CentsText(int64_t cents) {
  return fmt::format("{}{}.{:02d}", cents < 0 ? "-" : "", std::abs(cents) / 100,
                     std::abs(cents) % 100);
}

std::string DateText(int32_t days) {
  std::chrono::year_month_day ymd{std::chrono::sys_days{std::chrono::days{days}}};
  return fmt::format("{:04d}-{:02d}-{:02d}", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
}

std::string TimestampText(int64_t us) {
  int64_t days = us >= 0 ? us / 86'400'000'000 : -((-us + 86'399'999'999) / 86'400'000'000);
  int64_t rest = us - days * 86'400'000'000;
  int64_t secs = rest / 1'000'000;
  return fmt::format("{} {:02d}:{:02d}:{:02d}.{:06d}", DateText(static_cast<int32_t>(days)),
                     secs / 3600, secs / 60 % 60, secs % 60, rest % 1'000'000);
}

}  // namespace pdv::generate
