#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace pdv {

// "1990-01-31" for days since 1970-01-01.
std::string DateText(int32_t days_since_epoch);
// "2024-05-01 13:45:00.123456" for µs since the Unix epoch (UTC, no zone suffix).
std::string TimestampText(int64_t us_since_epoch);
// TimestampText of `t` with its zone, "Z": the instants of receipts and proofs.
std::string UtcText(std::chrono::system_clock::time_point t);
inline std::string UtcNowText() { return UtcText(std::chrono::system_clock::now()); }

// PostgreSQL's epoch (2000-01-01) in µs since the Unix epoch: replication messages count
// from it.
inline constexpr int64_t kPostgresEpochUs = 946'684'800'000'000;

}  // namespace pdv
