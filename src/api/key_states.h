#pragma once

// What one event loop knows of API keys (KeyStates): a key's state (valid, revoked,
// suspended for enumeration, unknown) remembered for half a second, looked up in Redis
// otherwise, and each key's lookups watched for the 404s of a CPF enumeration, which
// may suspend the key on every replica. One per event loop; not thread-safe.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>

#include "api/key_limits.h"
#include "api/shared_state.h"
#include "common/status.h"
#include "redis/async_commands.h"

namespace pdv::api {

enum class KeyState { kValid, kRevoked, kSuspended, kUnknown };

class KeyStates {
 public:
  // Borrows `redis` and `shared` (both outlive it); `log_redis_error` is called with
  // every failed Redis command whose caller is not told (the suspension's SET).
  KeyStates(redis::AsyncCommands& redis, SharedState& shared,
            std::function<void(const Status&)> log_redis_error);

  // The key's state when this loop knows it without asking Redis (a malformed key, or
  // one remembered); nullopt otherwise: then call LookUp.
  std::optional<KeyState> Known(const std::string& key);
  // Asks Redis for a key Known does not know; `index_seen` once the key index was found
  // present. Calls `done` once, on the loop; a failed status means nobody can tell (503).
  void LookUp(const std::string& key, bool index_seen, std::function<void(Status, KeyState)> done);
  // Counts a lookup's outcome for `key`; past the enumeration threshold, logs, counts
  // and (with the option) suspends the key on every replica.
  void RecordLookup(const std::string& key, bool not_found);

 private:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    KeyState state;
    Clock::time_point until;
  };
  static constexpr size_t kMaxRemembered = 10'000;

  redis::AsyncCommands& redis_;
  SharedState& shared_;
  std::function<void(const Status&)> log_redis_error_;
  std::unordered_map<std::string, Entry> keys_;
  EnumerationWatch watch_;
};

}  // namespace pdv::api
