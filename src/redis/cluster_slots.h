#pragma once

// Redis Cluster's key to slot mapping (CRC16/XMODEM of the key, or of its {hash tag},
// modulo 16384), and which argument of a command is its key.

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace pdv::redis {

inline constexpr int kClusterSlots = 16384;

uint16_t KeySlot(std::string_view key);

// The key that decides where `args` runs; nullopt for commands that name none (PING,
// PUBLISH, SCRIPT, CONFIG...), which any master can run.
std::optional<std::string_view> CommandKey(const std::vector<std::string_view>& args);

}  // namespace pdv::redis
