// cache::SyncLock: pdv:lock (see sync_lock.h).

#include "cache/sync_lock.h"

#include <fmt/format.h>

#include "cache/record.h"
#include "common/random_secret.h"
#include "pg/lease.h"
#include "pg/reconnect.h"

namespace pdv::cache {

pdv::Result<SyncLock> SyncLock::Acquire(redis::Client& redis, Scripts& scripts, Logger& log,
                                        std::stop_token stop, int64_t fence_token) {
  auto random = RandomSecretHex(16);
  if (!random.ok()) return random.status();
  std::string token = fmt::format("{}:{}", fence_token, *random);
  const std::string ttl = std::to_string(kTtl.count());
  for (int attempt = 0;; ++attempt) {
    auto r = redis.Command({"SET", kLockKey, token, "NX", "PX", ttl});
    if (!r.ok()) return r.status();
    if (!r->is_nil()) return SyncLock(redis, scripts, token);
    if (fence_token > 0) {
      auto taken = scripts.Run(redis, Script::kLockTakeOver, kLockKey,
                               {token, std::to_string(fence_token), ttl});
      if (!taken.ok()) return taken.status();
      if (taken->integer() == 1) {
        log.Info("cache_lock_taken_over", {{"lease_token", fence_token}});
        return SyncLock(redis, scripts, token);
      }
    }
    if (attempt % 20 == 0) log.Info("cache_waiting_for_lock", {{"attempt", attempt}});
    if (!pg::SleepFor(std::chrono::milliseconds(100), stop)) return Status::Error("stopped");
  }
}

Status SyncLock::Refresh() {
  auto r = scripts_->Run(*redis_, Script::kLockRefresh, kLockKey,
                         {token_, std::to_string(kTtl.count())});
  if (!r.ok()) return r.status();
  if (r->integer() != 1) {
    return Status::Error("cache: the sync lock was taken over by a newer holder", pg::kLeaseLost);
  }
  return Status::Ok();
}

SyncLock::~SyncLock() {
  if (redis_) (void)scripts_->Run(*redis_, Script::kLockRelease, kLockKey, {token_});
}

SyncLock::SyncLock(SyncLock&& o) noexcept
    : redis_(o.redis_), scripts_(o.scripts_), token_(std::move(o.token_)) {
  o.redis_ = nullptr;
}

}  // namespace pdv::cache
