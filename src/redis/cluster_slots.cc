#include "redis/cluster_slots.h"

#include <algorithm>
#include <cctype>
#include <string>

namespace pdv::redis {

uint16_t KeySlot(std::string_view key) {
  // Only the part inside the first {...} counts, when it is not empty.
  if (auto open = key.find('{'); open != std::string_view::npos) {
    auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  uint16_t crc = 0;
  for (char c : key) {
    crc ^= static_cast<uint16_t>(static_cast<uint8_t>(c)) << 8;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<uint16_t>(crc << 1);
    }
  }
  return crc % kClusterSlots;
}

std::optional<std::string_view> CommandKey(const std::vector<std::string_view>& args) {
  if (args.size() < 2) return std::nullopt;
  std::string name(args[0]);
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (name == "EVAL" || name == "EVALSHA") {
    if (args.size() < 4 || args[2] == "0") return std::nullopt;
    return args[3];
  }
  if (name == "MEMORY") return args.size() > 2 ? std::optional(args[2]) : std::nullopt;
  for (const char* keyless : {"PING", "SCRIPT", "CONFIG", "CLUSTER", "AUTH", "SELECT", "PUBLISH",
                              "INFO", "DBSIZE", "FLUSHALL", "FLUSHDB", "CLIENT", "HELLO", "ASKING",
                              "READONLY", "SUBSCRIBE", "WAIT", "ACL"}) {
    if (name == keyless) return std::nullopt;
  }
  return args[1];
}

}  // namespace pdv::redis
