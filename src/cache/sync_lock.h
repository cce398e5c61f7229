#pragma once

// The lock in Redis (pdv:lock, record.h's kLockKey) that serialises the cache's syncs
// and erasures. Not a lease of its own: the cache watch's lease (pg/lease.h) decides who
// is active, and this lock only keeps a sync by hand, an erasure and the watch apart.

#include <chrono>
#include <stop_token>
#include <string>

#include "cache/scripts.h"
#include "common/log.h"
#include "common/status.h"
#include "redis/client.h"

namespace pdv::cache {

// SET NX with a TTL refreshed while working, so a killed holder frees it within the
// TTL. Its value starts with the holder's lease token ("<token>:<random>"; 0 for a sync
// run by hand): a watch holding a newer lease takes it at once from a former watch
// (killed or cut off: its writes are fenced anyway) instead of waiting out the TTL. A
// sync run by hand is always waited for. Borrows the client and the scripts, which must
// outlive it; it uses them in Acquire, Refresh and its destructor (which releases it), so
// those calls must not overlap other uses of the client. Move-only.
class SyncLock {
 public:
  static constexpr std::chrono::milliseconds kTtl{5000};
  // Waits (100 ms at a time, logged every 2 s) until the lock is ours; fails when Redis
  // fails or `stop` fires ("stopped").
  static pdv::Result<SyncLock> Acquire(redis::Client& redis, Scripts& scripts, Logger& log,
                                       std::stop_token stop, int64_t fence_token = 0);
  // Extends the lock while it is still ours; taken over by a newer holder, it is lost
  // (code pg::kLeaseLost).
  Status Refresh();
  ~SyncLock();
  SyncLock(SyncLock&& o) noexcept;
  SyncLock& operator=(SyncLock&&) = delete;

 private:
  SyncLock(redis::Client& r, Scripts& s, std::string t)
      : redis_(&r), scripts_(&s), token_(std::move(t)) {}
  redis::Client* redis_;
  Scripts* scripts_;
  std::string token_;
};

}  // namespace pdv::cache
