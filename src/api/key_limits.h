#pragma once

// Per-key request limits that hold across event loops and API replicas: a per-second
// rate and a daily quota, counted in Redis. A loop takes a small share of a key's
// second ("a chunk": 1/200 of the rate) with one pipelined INCRBY, then admits requests
// locally until the share is spent, so Redis sees one round trip per chunk, not per
// request. The shared counters can only under-admit (a loop's unspent share is lost
// at the end of its second), never over-admit. When Redis does not answer, each loop
// falls back to its own bucket of rate / loops: the limit is then per replica.
//
// This file owns the layout of the counters:
//   pdv:limit:rate:<key sha256>:<unix second>   integer, expires after 2 s
//   pdv:limit:day:<key sha256>:<YYYYMMDD UTC>   integer, expires after 25 h
//
// Also: a token bucket per client IP (before authentication), a count of each client
// IP's open connections, and a watch over each key's share of 404s (the sign of a CPF
// enumeration).

// clang-format off
#include <utility>  // before any Asio header under C++20 (PLATFORM-NOTES.md)
// clang-format on

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "redis/async_commands.h"

namespace pdv::api {

struct KeyLimitOptions {
  double rate_per_key = 0;   // requests/s per key across replicas; 0: none
  uint64_t daily_quota = 0;  // requests per key per UTC day; 0: none
  int loops = 1;             // event loops of this replica (for the fallback)
};

struct Admission {
  bool allowed = true;
  int retry_after_s = 0;
  const char* code = "";  // LIMITE_EXCEDIDO or COTA_DIARIA_EXCEDIDA when refused
};

// One per event loop. Not thread-safe.
class KeyLimits {
 public:
  KeyLimits(redis::AsyncCommands& redis, KeyLimitOptions options);
  // Calls `done` once, maybe before returning. `key` is the API key as sent.
  void Admit(const std::string& key, std::function<void(Admission)> done);
  // The answer when this loop can give it at once (no limits, the loop's share not yet
  // spent, or refused); nullopt when it needs Redis: then call Admit.
  std::optional<Admission> TryAdmit(const std::string& key);
  size_t tracked_keys() const { return keys_.size(); }

 private:
  struct KeyState {
    std::string hash;  // ApiKeyHash, computed once
    int64_t second = 0;
    uint64_t allowance = 0;  // admitted locally before the next chunk
    bool second_spent = false;
    int64_t day = 0;
    bool day_spent = false;
    bool fetching = false;
    std::vector<std::function<void(Admission)>> waiting;
    double fallback_tokens = 0;
    std::chrono::steady_clock::time_point fallback_at{};
  };
  void Fetch(const std::string& key, KeyState& state, int64_t second, int64_t day);
  Admission Fallback(KeyState& state);

  redis::AsyncCommands& redis_;
  KeyLimitOptions options_;
  uint64_t chunk_ = 1;
  std::unordered_map<std::string, KeyState> keys_;
};

// A token bucket per client address, checked before a request's key is. Not thread-safe.
class AddressLimits {
 public:
  explicit AddressLimits(double rate) : rate_(rate) {}
  // 0 when allowed, else seconds to wait.
  int Take(const std::string& address);

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point at;
  };
  double rate_;
  std::unordered_map<std::string, Bucket> buckets_;
};

// Open connections per client address, across every event loop of a replica, at most
// `cap` each (0: no cap), so that one address cannot take the whole of max_connections.
// Thread-safe: taken at accept and given back at close, never per request.
class AddressConnections {
 public:
  explicit AddressConnections(size_t cap) : cap_(cap) {}
  // Whether `address` may open one more connection; if true, it counts until Release.
  [[nodiscard]] bool Acquire(const std::string& address);
  // Gives back what one successful Acquire of `address` took.
  void Release(const std::string& address);
  size_t cap() const { return cap_; }

 private:
  const size_t cap_;
  std::mutex mu_;
  std::unordered_map<std::string, size_t> open_;  // only addresses with connections
};

// Each key's lookups and 404s over a window: Record returns true when the key's 404
// share has just passed `ratio` with at least `min_lookups` lookups in the window (once
// per window). Not thread-safe.
class EnumerationWatch {
 public:
  EnumerationWatch(double ratio, uint64_t min_lookups, std::chrono::seconds window)
      : ratio_(ratio), min_lookups_(min_lookups), window_(window) {}
  bool Record(const std::string& key, bool not_found);

 private:
  struct Window {
    std::chrono::steady_clock::time_point started;
    uint64_t lookups = 0, not_found = 0;
    bool raised = false;
  };
  double ratio_;
  uint64_t min_lookups_;
  std::chrono::seconds window_;
  std::unordered_map<std::string, Window> windows_;
};

// The Redis key that marks a key suspended for enumeration (set by the API, with a TTL).
std::string SuspendedKey(std::string_view key_hash);

}  // namespace pdv::api
