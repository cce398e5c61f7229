#include "generate/customer.h"

#include <fmt/format.h>

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

}  // namespace pdv::generate
