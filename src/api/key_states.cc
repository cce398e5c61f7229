#include "api/key_states.h"

#include <hiredis/hiredis.h>

#include <string_view>

#include "api/apikeys.h"

namespace pdv::api {

KeyStates::KeyStates(redis::AsyncCommands& redis, SharedState& shared,
                     std::function<void(const Status&)> log_redis_error)
    : redis_(redis),
      shared_(shared),
      log_redis_error_(std::move(log_redis_error)),
      watch_(shared.options.enumeration_ratio, shared.options.enumeration_min_lookups,
             shared.options.enumeration_window) {}

std::optional<KeyState> KeyStates::Known(const std::string& key) {
  // Only what `pdv apikey` makes ("pdv_" and 64 hex digits) can be a key: anything else
  // is unknown at once, asks nothing of Redis and is remembered nowhere, so the memory
  // below holds at most kMaxRemembered keys of 68 bytes.
  if (!LooksLikeApiKey(key)) return KeyState::kUnknown;
  // Remembered by the key as sent (process memory only), so a known key costs no hash.
  if (auto it = keys_.find(key); it != keys_.end() && it->second.until > Clock::now()) {
    return it->second.state;
  }
  return std::nullopt;
}

void KeyStates::LookUp(const std::string& key, bool index_seen,
                       std::function<void(Status, KeyState)> done) {
  redis_.Command({"HGET", ApiKeyRedisKey(ApiKeyHash(key)), "revoked"},
                 [this, key, index_seen, done](const Status& s, redisReply* r) {
                   if (!s.ok()) return done(s, KeyState::kUnknown);
                   KeyState state = r->type != REDIS_REPLY_STRING             ? KeyState::kUnknown
                                    : std::string_view(r->str, r->len) == "1" ? KeyState::kRevoked
                                                                              : KeyState::kValid;
                   auto remember = [this, key, done](KeyState state) {
                     // For half a second: a revocation reaches every loop and replica within
                     // that (the contract: under a second).
                     if (keys_.size() > kMaxRemembered) keys_.clear();
                     keys_[key] = {state, Clock::now() + std::chrono::milliseconds(500)};
                     done(Status::Ok(), state);
                   };
                   if (state == KeyState::kValid) {
                     // Valid unless suspended for enumeration (by any replica).
                     return redis_.Command(
                         {"EXISTS", SuspendedKey(ApiKeyHash(key))},
                         [done, remember](const Status& es, redisReply* er) {
                           if (!es.ok()) return done(es, KeyState::kUnknown);
                           bool suspended = er->type == REDIS_REPLY_INTEGER && er->integer == 1;
                           remember(suspended ? KeyState::kSuspended : KeyState::kValid);
                         });
                   }
                   if (state != KeyState::kUnknown || index_seen) return remember(state);
                   // Unknown, or Redis lost every key (the index's marker is gone too)
                   // and the cache stage has not refilled them yet: then nobody can
                   // tell, and the answer is 503, not 401. The index is written after
                   // every key (RestoreApiKeys), so once it is seen, a second look at
                   // the key is the answer: a restore that ended between the two reads
                   // above must not make a restored key a 401.
                   redis_.Command({"EXISTS", kApiKeysIndexKey},
                                  [this, key, done](const Status& es, redisReply* er) {
                                    if (!es.ok()) return done(es, KeyState::kUnknown);
                                    if (er->type == REDIS_REPLY_INTEGER && er->integer == 0) {
                                      return done(Status::Error("API keys are not loaded (Redis "
                                                                "lost its data)"),
                                                  KeyState::kUnknown);
                                    }
                                    LookUp(key, /*index_seen=*/true, done);
                                  });
                 });
}

void KeyStates::RecordLookup(const std::string& key, bool not_found) {
  if (!watch_.Record(key, not_found)) return;
  const ServeOptions& o = shared_.options;
  std::string hash = ApiKeyHash(key);
  shared_.enumeration_alarms->Add(1);
  // Named as `pdv apikey revoke` names it, and by its hash's first 12 hex digits (the
  // hash is no secret: it is what Redis and the warehouse hold) should names repeat.
  // The field names avoid "key", which the logger redacts.
  redis_.Command({"HGET", ApiKeyRedisKey(hash), "name"}, [this, prefix = hash.substr(0, 12)](
                                                             const Status& s, redisReply* r) {
    const ServeOptions& opts = shared_.options;
    std::string name = s.ok() && r && r->type == REDIS_REPLY_STRING
                           ? std::string(r->str, r->len)
                           : std::string("(unknown: Redis did not say)");
    shared_.log.Warn("serve_enumeration_suspected",
                     {{"credential", name},
                      {"credential_sha256_prefix", prefix},
                      {"not_found_ratio_over", opts.enumeration_ratio},
                      {"window_s", static_cast<int64_t>(opts.enumeration_window.count())},
                      {"action", opts.enumeration_suspend ? "suspended" : "logged"}});
  });
  if (!o.enumeration_suspend) return;
  keys_.erase(key);
  redis_.Command(
      {"SET", SuspendedKey(hash), "1", "EX", std::to_string(o.enumeration_suspend_for.count())},
      [this](const Status& s, redisReply*) {
        if (!s.ok()) log_redis_error_(s);
      });
}

}  // namespace pdv::api
