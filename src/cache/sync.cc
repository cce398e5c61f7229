#include <fmt/format.h>
#include <libpq-fe.h>

#include <future>
#include <optional>
#include <thread>

#include "cache/bucket_batch.h"
#include "cache/cache.h"
#include "cache/record.h"
#include "common/backoff.h"
#include "common/progress.h"
#include "common/random_secret.h"
#include "pg/connection.h"
#include "pg/lease.h"
#include "pg/lease_runner.h"
#include "pg/notifications.h"
#include "pg/reconnect.h"
#include "redis/client.h"
#include "warehouse/warehouse.h"

namespace pdv::cache {
namespace {

using std::chrono::milliseconds;

// Every write of a cache watch into a bucket is fenced, in the bucket itself: Redis
// Cluster runs a script on one slot, so pdv:meta cannot be read beside the bucket. ARGV[1]
// is the writer's lease token (pg/lease.h), kept in the bucket's fence field
// (Layout::kFenceField); an older token is refused, so a former holder that wakes with a
// batch in hand cannot overwrite, resurrect or re-point what a newer holder wrote there.
// A bucket the newer holder has not written yet holds no newer state of the former's
// customers, and the newer holder's own writes, in LSN order, follow. "0" (a sync run by
// hand) is not fenced.
constexpr char kFencePrologue[] = R"lua(
local token = tonumber(ARGV[1])
if token > 0 then
  local fence = tonumber(redis.call('HGET', KEYS[1], 'fence') or '0')
  if token < fence then
    return redis.error_reply('FENCED this bucket is written by a newer cache holder (token ' .. fence .. ')')
  end
  if token > fence then redis.call('HSET', KEYS[1], 'fence', ARGV[1]) end
end
)lua";

// Upsert unless the stored state is newer (values start with their 8-byte big-endian
// LSN, so byte order is LSN order). ARGV: token, field, value.
constexpr char kUpsertBody[] = R"lua(
local cur = redis.call('HGET', KEYS[1], ARGV[2])
if cur and string.sub(cur, 1, 8) > string.sub(ARGV[3], 1, 8) then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
return 1)lua";

// Remove unless the stored state is newer than the tombstone, or belongs to another
// customer. ARGV: token, field, the tombstone's LSN, the cliente_id bytes.
constexpr char kDeleteBody[] = R"lua(
local cur = redis.call('HGET', KEYS[1], ARGV[2])
if not cur then return 0 end
if string.sub(cur, 1, 8) > ARGV[3] then return 0 end
if string.sub(cur, 9, 24) ~= ARGV[4] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[2])
return 1)lua";

// Point the id index at a new cpf field (or remove it): returns the old pointer.
// ARGV: token, id field, cpf field ('' to remove).
constexpr char kSwapBody[] = R"lua(
local old = redis.call('HGET', KEYS[1], ARGV[2])
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[2])
else redis.call('HSET', KEYS[1], ARGV[2], ARGV[3]) end
return old or '')lua";

// pdv:meta's updates (the position, a full load's switch), fenced: ARGV[1] is the lease
// token of the cache watch that writes (pg/lease.h), kept in the field "fence". A token
// older than the stored one is refused, so a former holder cannot move the position or
// switch versions after a newer holder has written; "0" (a sync run by hand) is not
// fenced. The other writes need no fence: an older state never overwrites a newer one.
constexpr char kMetaScript[] = R"lua(
local token = tonumber(ARGV[1])
if token > 0 then
  local fence = tonumber(redis.call('HGET', KEYS[1], 'fence') or '0')
  if token < fence then
    return redis.error_reply('FENCED pdv:meta is written by a newer cache holder (token ' .. fence .. ')')
  end
  redis.call('HSET', KEYS[1], 'fence', ARGV[1])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1)lua";

// A refused fence (a script's FENCED error) is the lease lost; anything else as it is.
Status FencedAsLeaseLost(Status s) {
  if (!s.ok() && redis::IsFenced(s)) {
    return Status::Error("cache: " + s.message(), pg::kLeaseLost);
  }
  return s;
}

// Sets `fields` (name, value, ...) of pdv:meta through kMetaScript.
pdv::Status WriteMeta(redis::Client& redis, int64_t fence_token,
                      const std::vector<std::string>& fields) {
  std::vector<std::string> args = {"EVAL", kMetaScript, "1", kMetaKey, std::to_string(fence_token)};
  args.insert(args.end(), fields.begin(), fields.end());
  auto r = redis.Command(std::vector<std::string_view>(args.begin(), args.end()));
  return FencedAsLeaseLost(r.status());
}

std::string Lsn8(uint64_t lsn) {
  std::string out;
  for (int s = 56; s >= 0; s -= 8) out.push_back(static_cast<char>(lsn >> s));
  return out;
}

// A lock in Redis serialising syncs (SET NX with a TTL refreshed while working, so a
// killed holder frees it within the TTL). Its value starts with the holder's lease token
// ("<token>:<random>"; 0 for a sync run by hand): a watch holding a newer lease takes it
// at once from a former watch (killed or cut off: its writes are fenced anyway) instead
// of waiting out the TTL. A sync run by hand is always waited for.
class SyncLock {
 public:
  static constexpr milliseconds kTtl{5000};
  static pdv::Result<SyncLock> Acquire(redis::Client& redis, Logger& log, std::stop_token stop,
                                       int64_t fence_token = 0) {
    auto random = RandomSecretHex(16);
    if (!random.ok()) return random.status();
    std::string token = fmt::format("{}:{}", fence_token, *random);
    for (int attempt = 0;; ++attempt) {
      auto r = redis.Command({"SET", kLockKey, token, "NX", "PX", std::to_string(kTtl.count())});
      if (!r.ok()) return r.status();
      if (!r->is_nil()) return SyncLock(redis, token);
      if (fence_token > 0) {
        // Compare-and-set over a former watch's lock (its token older than ours, not 0).
        auto taken = redis.Command(
            {"EVAL",
             "local cur = redis.call('GET', KEYS[1]) if not cur then return 0 end "
             "local held = tonumber(string.match(cur, '^(%d+):')) "
             "if held and held > 0 and held < tonumber(ARGV[2]) then "
             "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3]) return 1 end return 0",
             "1", kLockKey, token, std::to_string(fence_token), std::to_string(kTtl.count())});
        if (!taken.ok()) return taken.status();
        if (taken->integer() == 1) {
          log.Info("cache_lock_taken_over", {{"lease_token", fence_token}});
          return SyncLock(redis, token);
        }
      }
      if (attempt % 20 == 0) log.Info("cache_waiting_for_lock", {{"attempt", attempt}});
      if (!pg::SleepFor(milliseconds(100), stop)) return Status::Error("stopped");
    }
  }
  // Extends the lock while it is still ours; taken over by a newer holder, it is lost.
  Status Refresh() {
    auto r = redis_->Command({"EVAL",
                              "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                              "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0",
                              "1", kLockKey, token_, std::to_string(kTtl.count())});
    if (!r.ok()) return r.status();
    if (r->integer() != 1) {
      return Status::Error("cache: the sync lock was taken over by a newer holder", pg::kLeaseLost);
    }
    return Status::Ok();
  }
  ~SyncLock() {
    if (redis_) {
      (void)redis_->Command({"EVAL",
                             "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                             "return redis.call('DEL', KEYS[1]) end return 0",
                             "1", kLockKey, token_});
    }
  }
  SyncLock(SyncLock&& o) noexcept : redis_(o.redis_), token_(std::move(o.token_)) {
    o.redis_ = nullptr;
  }
  SyncLock& operator=(SyncLock&&) = delete;

 private:
  SyncLock(redis::Client& r, std::string t) : redis_(&r), token_(std::move(t)) {}
  redis::Client* redis_;
  std::string token_;
};

// Sends queued pipelined commands' replies; fails on the first error.
class Pipeline {
 public:
  explicit Pipeline(redis::Client& r) : redis_(r) {}
  void Add(const std::vector<std::string_view>& args) {
    redis_.Append(args);
    ++pending_;
  }
  size_t pending() const { return pending_; }
  // Collects every pending reply; `each` sees them in order.
  Status Drain(const std::function<Status(redis::Reply&)>& each = {}) {
    Status first;
    for (; pending_ > 0; --pending_) {
      auto r = redis_.GetReply();
      if (!r.ok()) {
        if (first.ok()) first = r.status();
        if (redis::IsConnectionError(r.status())) return first;
        continue;
      }
      if (each && first.ok()) first = each(*r);
    }
    return first;
  }

 private:
  redis::Client& redis_;
  size_t pending_ = 0;
};

pdv::Result<std::string> LoadScript(redis::Client& redis, std::string_view script) {
  auto r = redis.Command({"SCRIPT", "LOAD", script});
  if (!r.ok()) return r.status();
  return std::string(r->str());
}

// A bucket write script: the fence first, then `body`.
pdv::Result<std::string> LoadFencedScript(redis::Client& redis, const char* body) {
  return LoadScript(redis, std::string(kFencePrologue) + body);
}

// Buckets per round trip when a whole version is removed or measured.
constexpr uint32_t kBucketsPerRound = 500;

Status RemoveVersion(redis::Client& redis, const Layout& layout) {
  Pipeline p(redis);
  for (uint32_t first = 0; first < layout.buckets(); first += kBucketsPerRound) {
    std::vector<std::string> keys = layout.BucketKeys(first, kBucketsPerRound);
    std::vector<std::string_view> args = {"UNLINK"};
    args.insert(args.end(), keys.begin(), keys.end());
    p.Add(args);
    if (Status s = p.Drain(); !s.ok()) return s;
  }
  return Status::Ok();
}

double MemoryPerCustomer(redis::Client& redis, const Layout& layout, uint64_t customers) {
  if (customers == 0) return 0;
  Pipeline p(redis);
  double total = 0;
  for (uint32_t first = 0; first < layout.buckets(); first += kBucketsPerRound) {
    for (const auto& k : layout.BucketKeys(first, kBucketsPerRound))
      p.Add({"MEMORY", "USAGE", k, "SAMPLES", "0"});
    (void)p.Drain([&](redis::Reply& r) {
      if (!r.is_nil()) total += static_cast<double>(r.integer());
      return Status::Ok();
    });
  }
  return total / static_cast<double>(customers);
}

}  // namespace

pdv::Result<Meta> ReadMeta(redis::Client& redis) {
  auto r = redis.Command({"HGETALL", kMetaKey});
  if (!r.ok()) return r.status();
  std::vector<std::pair<std::string, std::string>> fields;
  for (size_t i = 0; i + 1 < r->elements(); i += 2) {
    fields.emplace_back(std::string(r->element(i)->str, r->element(i)->len),
                        std::string(r->element(i + 1)->str, r->element(i + 1)->len));
  }
  return ParseMeta(fields);
}

pdv::Result<SyncResult> SyncFull(const CacheOptions& options, Logger& log, std::stop_token stop) {
  auto redis = redis::Client::Connect(options.redis_url);
  if (!redis.ok()) return redis.status();
  auto wh = warehouse::ConnectPostgresWarehouse(options.warehouse_url);
  if (!wh.ok()) return wh.status();
  auto lock = SyncLock::Acquire(*redis, log, stop, options.fence_token);
  if (!lock.ok()) return lock.status();
  auto meta = ReadMeta(*redis);
  if (!meta.ok()) {
    if (redis::IsConnectionError(meta.status())) return meta.status();
    // A malformed meta is rewritten whole by this load's switch.
    log.Warn("cache_meta_malformed", {{"error", meta.message()}, {"action", "full load"}});
    meta = Meta{};
  }

  // Size the buckets for the data (about 128 customers each): count first.
  auto counted = (*wh)->CountDimension();
  if (!counted.ok()) return counted.status();
  uint64_t count = *counted, max_lsn = 0;
  Layout next{.version = meta->layout.version + 1, .bits = BucketBitsFor(count)};
  // Buckets of ~128 customers (up to ~200) must stay listpacks, the compact encoding.
  if (auto limit = redis->Command({"CONFIG", "GET", "hash-max-listpack-entries"});
      limit.ok() && limit->elements() == 2 && std::stoll(limit->element(1)->str) < 1024) {
    if (auto set = redis->Command({"CONFIG", "SET", "hash-max-listpack-entries", "1024"});
        !set.ok()) {
      log.Warn("cache_redis_config", {{"error", set.message()},
                                      {"hint", "set hash-max-listpack-entries to 1024 or more"}});
    }
  }
  // A full load killed before its switch left part of this version behind.
  if (Status s = RemoveVersion(*redis, next); !s.ok()) return s;

  std::optional<Progress> progress;
  if (options.progress) progress.emplace(options.progress, "cache_full_load", count);
  Pipeline pipeline(*redis);
  // Keys: the index in the high half (0 cpf, 1 id), the bucket in the low one.
  auto key_text = [&](uint64_t key) {
    auto bucket = static_cast<uint32_t>(key);
    return key >> 32 == 0 ? next.CpfBucketKey(bucket) : next.IdBucketKey(bucket);
  };
  // One HSET per bucket of the batch, a pipeline round trip per `options.batch` of them.
  // hiredis moves what is left of its output buffer after every write: a round trip
  // carries at most ~256 KiB of these long commands (9 MB of them cost a quarter of the
  // load's CPU in memmove).
  auto send = [&](BucketBatch& full, uint64_t upto) -> Status {
    Status failed;
    size_t pending_bytes = 0;
    full.Flush(key_text, [&](const std::vector<std::string_view>& args) {
      if (!failed.ok()) return;
      pipeline.Add(args);
      for (auto a : args) pending_bytes += a.size();
      if (pipeline.pending() >= options.batch || pending_bytes >= (256 << 10)) {
        pending_bytes = 0;
        failed = pipeline.Drain();
        if (failed.ok()) failed = lock->Refresh();
      }
    });
    if (failed.ok()) failed = pipeline.Drain();
    if (failed.ok() && progress) progress->Update(upto);
    return failed;
  };
  // A full batch is sent by a thread of its own while the next one fills from the
  // warehouse (Redis's work overlaps the warehouse's and ours); that thread is the only
  // user of `redis` until it is joined.
  const size_t batch_bytes = options.full_load_batch_bytes / 2;
  BucketBatch batch(batch_bytes);
  uint64_t written = 0;
  std::future<Status> sending;
  auto hand_off = [&]() -> Status {
    if (sending.valid()) {
      if (Status s = sending.get(); !s.ok()) return s;
    }
    sending = std::async(
        std::launch::async,
        [&send, full = std::move(batch), upto = written]() mutable { return send(full, upto); });
    batch = BucketBatch(batch_bytes);
    return Status::Ok();
  };
  Status read = (*wh)->ReadDimension(
      0, "", true, 0,
      [&](const warehouse::DimensionRow& d) -> Status {
        if (stop.stop_requested()) return Status::Error("stopped during a full load");
        auto record = RecordFromDimension(d);
        if (!record.ok()) return record.status();
        auto hash = HashBytes(d.cpf_hash);
        if (!hash.ok())
          return Status::Error(
              fmt::format("dimension: cliente {}: {}", d.cliente_id, hash.message()));
        std::string cpf_field = Layout::CpfField(*hash);
        batch.Add(next.Bucket(hash->data()), cpf_field, Encode(*record));
        batch.Add(uint64_t{1} << 32 | next.Bucket(record->cliente_id.data()),
                  Layout::IdField(record->cliente_id), cpf_field);
        ++written;
        return batch.full() ? hand_off() : Status::Ok();
      },
      &max_lsn);
  Status sent = read.ok() ? hand_off() : Status::Ok();
  if (sending.valid()) {
    Status last = sending.get();
    if (sent.ok()) sent = last;
  }
  if (!read.ok()) return read;
  if (!sent.ok()) return sent;
  if (progress) progress->Finish(written);
  // The new version on every replica that a failover could promote before pdv:meta
  // names it: a promoted replica then has all of it or still names the old one.
  if (Status s = redis->WaitForReplicas(options.replica_ack_timeout); !s.ok()) return s;

  // The switch: one HSET, then the announcement.
  if (Status s = WriteMeta(
          *redis, options.fence_token,
          {"version", std::to_string(next.version), "bits", std::to_string(next.bits), "format",
           std::to_string(kRecordFormat), "lsn", std::to_string(max_lsn), "lsn_id", ""});
      !s.ok()) {
    return s;
  }
  (void)redis->Command({"PUBLISH", kVersionChannel, std::to_string(next.version)});
  double per_customer = MemoryPerCustomer(*redis, next, written);
  log.Info("cache_full_load_done", {{"version", next.version},
                                    {"customers", written},
                                    {"bucket_bits", next.bits},
                                    {"lsn", max_lsn},
                                    {"redis_bytes_per_customer", per_customer}});
  if (meta->exists || meta->older_format) {
    pg::SleepFor(options.old_version_grace, stop);
    if (Status s = RemoveVersion(*redis, meta->layout); !s.ok()) return s;
  }
  return SyncResult{next.version, written, max_lsn, per_customer};
}

namespace {

// The incremental scripts' SHAs, loaded once per Redis connection.
struct IncrementalScripts {
  std::string upsert, remove, swap;
  Status Load(redis::Client& redis) {
    if (!upsert.empty()) return Status::Ok();
    auto u = LoadFencedScript(redis, kUpsertBody);
    auto r = LoadFencedScript(redis, kDeleteBody);
    auto w = LoadFencedScript(redis, kSwapBody);
    if (!u.ok()) return u.status();
    if (!r.ok()) return r.status();
    if (!w.ok()) return w.status();
    upsert = *u, remove = *r, swap = *w;
    return Status::Ok();
  }
};

// An incremental sync on connections the caller keeps (the watch keeps them between
// syncs: connecting to both stores anew took most of a small sync's time).
pdv::Result<SyncResult> SyncIncrementalOn(redis::Client& redis, warehouse::Warehouse& wh,
                                          IncrementalScripts& scripts, const CacheOptions& options,
                                          Logger& log, std::stop_token stop) {
  auto started = std::chrono::steady_clock::now();
  {
    auto meta = ReadMeta(redis);
    if (!meta.ok()) return meta.status();
    if (!meta->exists) return SyncFull(options, log, stop);
  }
  auto lock = SyncLock::Acquire(redis, log, stop, options.fence_token);
  if (!lock.ok()) return lock.status();
  auto meta = ReadMeta(redis);  // again, under the lock
  if (!meta.ok()) return meta.status();
  if (Status s = scripts.Load(redis); !s.ok()) return s;
  const Layout& layout = meta->layout;

  SyncResult result{layout.version, 0, meta->lsn, 0};
  std::string position_id = meta->lsn_id;
  const std::string token = std::to_string(options.fence_token);
  while (!stop.stop_requested()) {
    struct Pending {
      std::array<uint8_t, 32> hash;
      std::array<uint8_t, 16> id;
      uint64_t lsn;
    };
    std::vector<Pending> rows;
    Pipeline pipeline(redis);
    uint64_t batch_lsn = result.lsn;
    std::string batch_id = position_id;
    size_t read_rows = 0;
    Status read = wh.ReadDimension(
        result.lsn, position_id, false, options.batch,
        [&](const warehouse::DimensionRow& d) -> Status {
          ++read_rows;
          batch_lsn = d.lsn;
          batch_id = d.cliente_id;
          // An erased customer's tombstone names no one (src/subject/): nothing to apply,
          // the erasure removed the record itself.
          if (d.deleted && d.cpf_hash.empty()) return Status::Ok();
          auto hash = HashBytes(d.cpf_hash);
          auto id = UuidBytes(d.cliente_id);
          if (!hash.ok()) return hash.status();
          if (!id.ok()) return id.status();
          std::string cpf_key = layout.CpfKey(*hash), cpf_field = Layout::CpfField(*hash);
          std::string id_key = layout.IdKey(*id), id_field = Layout::IdField(*id);
          std::string id_bytes(reinterpret_cast<const char*>(id->data()), 16);
          if (d.deleted) {
            pipeline.Add(
                {"EVALSHA", scripts.remove, "1", cpf_key, token, cpf_field, Lsn8(d.lsn), id_bytes});
            pipeline.Add({"EVALSHA", scripts.swap, "1", id_key, token, id_field, ""});
          } else {
            auto record = RecordFromDimension(d);
            if (!record.ok()) return record.status();
            pipeline.Add(
                {"EVALSHA", scripts.upsert, "1", cpf_key, token, cpf_field, Encode(*record)});
            pipeline.Add({"EVALSHA", scripts.swap, "1", id_key, token, id_field, cpf_field});
          }
          rows.push_back({*hash, *id, d.lsn});
          return Status::Ok();
        },
        nullptr);
    if (!read.ok()) return read;
    if (read_rows == 0) break;
    // A customer whose cpf_hash changed: remove the entry under the old one.
    std::vector<std::string> moved_from(rows.size());
    size_t i = 0;
    Status applied = pipeline.Drain([&](redis::Reply& r) {
      if (i % 2 == 1 && r.type() == REDIS_REPLY_STRING) moved_from[i / 2] = std::string(r.str());
      ++i;
      return Status::Ok();
    });
    if (!applied.ok()) return FencedAsLeaseLost(applied);
    for (size_t k = 0; k < rows.size(); ++k) {
      const std::string& old = moved_from[k];
      if (old.empty() || old == Layout::CpfField(rows[k].hash)) continue;
      std::array<uint8_t, 32> old_hash{};
      std::copy(old.begin(), old.end(), old_hash.begin());
      pipeline.Add({"EVALSHA", scripts.remove, "1", layout.CpfKey(old_hash), token, old,
                    Lsn8(rows[k].lsn),
                    std::string(reinterpret_cast<const char*>(rows[k].id.data()), 16)});
    }
    if (Status s = pipeline.Drain(); !s.ok()) return FencedAsLeaseLost(s);
    // Only now, with every write acknowledged by the masters and by the replicas that a
    // failover could promote, move the position: a failover loses no change behind it.
    if (Status s = redis.WaitForReplicas(options.replica_ack_timeout); !s.ok()) return s;
    if (Status s = WriteMeta(redis, options.fence_token,
                             {"lsn", std::to_string(batch_lsn), "lsn_id", batch_id});
        !s.ok()) {
      return s;
    }
    if (Status s = lock->Refresh(); !s.ok()) return s;
    result.lsn = batch_lsn;
    position_id = batch_id;
    result.applied += rows.size();
  }
  if (result.applied > 0) {
    log.Info("cache_sync_done", {{"version", result.version},
                                 {"applied", result.applied},
                                 {"lsn", result.lsn},
                                 {"ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::steady_clock::now() - started)
                                            .count()}});
  }
  return result;
}

}  // namespace

pdv::Result<SyncResult> SyncIncremental(const CacheOptions& options, Logger& log,
                                        std::stop_token stop) {
  auto redis = redis::Client::Connect(options.redis_url);
  if (!redis.ok()) return redis.status();
  auto wh = warehouse::ConnectPostgresWarehouse(options.warehouse_url);
  if (!wh.ok()) return wh.status();
  IncrementalScripts scripts;
  return SyncIncrementalOn(*redis, **wh, scripts, options, log, stop);
}

pdv::Result<std::optional<CustomerRecord>> FindCustomer(redis::Client& redis,
                                                        std::string_view cpf_hash) {
  auto hash = HashBytes(cpf_hash);
  if (!hash.ok()) return hash.status();
  auto meta = ReadMeta(redis);
  if (!meta.ok()) return meta.status();
  if (!meta->exists) return std::optional<CustomerRecord>();
  auto r = redis.Command({"HGET", meta->layout.CpfKey(*hash), Layout::CpfField(*hash)});
  if (!r.ok()) return r.status();
  if (r->type() != REDIS_REPLY_STRING) return std::optional<CustomerRecord>();
  auto record = Decode(r->str());
  if (!record.ok()) return record.status();
  return std::optional<CustomerRecord>(*record);
}

pdv::Result<Erased> EraseCustomer(const CacheOptions& options, std::string_view cpf_hash,
                                  std::string_view cliente_id, Logger& log, std::stop_token stop) {
  auto hash = HashBytes(cpf_hash);
  if (!hash.ok()) return hash.status();
  auto id = UuidBytes(cliente_id);
  if (!id.ok()) return id.status();
  auto redis = redis::Client::Connect(options.redis_url);
  if (!redis.ok()) return redis.status();
  auto lock = SyncLock::Acquire(*redis, log, stop);
  if (!lock.ok()) return lock.status();
  auto meta = ReadMeta(*redis);
  if (!meta.ok()) return meta.status();
  Erased erased;
  if (!meta->exists) return erased;
  const Layout& layout = meta->layout;
  std::string id_bytes(reinterpret_cast<const char*>(id->data()), 16);
  // The record only if it is this customer's (a cpf_hash is one person's, but the
  // check costs nothing); its LSN is no bound: everything of it goes.
  auto removed = redis->Command(
      {"EVAL",
       "local cur = redis.call('HGET', KEYS[1], ARGV[1]) if not cur then return 0 end "
       "if string.sub(cur, 9, 24) ~= ARGV[2] then return 0 end "
       "return redis.call('HDEL', KEYS[1], ARGV[1])",
       "1", layout.CpfKey(*hash), Layout::CpfField(*hash), id_bytes});
  if (!removed.ok()) return removed.status();
  erased.records = static_cast<int>(removed->integer());
  auto pointer = redis->Command(
      {"EVAL",
       "local cur = redis.call('HGET', KEYS[1], ARGV[1]) if cur ~= ARGV[2] then return 0 end "
       "return redis.call('HDEL', KEYS[1], ARGV[1])",
       "1", layout.IdKey(*id), Layout::IdField(*id), Layout::CpfField(*hash)});
  if (!pointer.ok()) return pointer.status();
  erased.id_entries = static_cast<int>(pointer->integer());
  if (Status s = redis->WaitForReplicas(options.replica_ack_timeout); !s.ok()) return s;
  return erased;
}

pdv::Result<SyncResult> SyncWithRetry(bool full, const CacheOptions& options, Logger& log,
                                      std::stop_token stop) {
  auto give_up = std::chrono::steady_clock::now() +
                 milliseconds(static_cast<int64_t>(options.retry_timeout_s * 1000));
  Backoff backoff;
  for (int attempt = 1;; ++attempt) {
    auto r = full ? SyncFull(options, log, stop) : SyncIncremental(options, log, stop);
    if (r.ok() || stop.stop_requested()) return r;
    bool unreachable = redis::IsConnectionError(r.status()) || pg::IsConnectionLost(r.status());
    if (!unreachable || std::chrono::steady_clock::now() + backoff.delay() > give_up) {
      if (attempt == 1) return r;
      return Status::Error(fmt::format("{} (after {} attempts)", r.message(), attempt));
    }
    log.Warn("cache_retry", {{"attempt", attempt},
                             {"retry_in_ms", static_cast<int64_t>(backoff.delay().count())},
                             {"error", r.message()}});
    if (!pg::SleepFor(backoff.delay(), stop)) return r;
    backoff.Grow();
  }
}

namespace {

// What Redis holds compared with what this process last wrote there.
enum class Dataset { kCurrent, kLost, kOlder };

struct Written {
  uint64_t version = 0;
  uint64_t lsn = 0;
};

pdv::Result<Dataset> CheckDataset(redis::Client& redis, const std::optional<Written>& written,
                                  Logger& log) {
  auto meta = ReadMeta(redis);
  if (!meta.ok()) {
    if (redis::IsConnectionError(meta.status())) return meta.status();
    return Dataset::kLost;  // malformed: the full load says so (cache_meta_malformed)
  }
  if (!meta->exists) {
    log.Warn("cache_dataset_lost", {{"action", "full load"}});
    return Dataset::kLost;
  }
  if (written && (meta->layout.version < written->version ||
                  (meta->layout.version == written->version && meta->lsn < written->lsn))) {
    log.Warn("cache_dataset_older", {{"version", meta->layout.version},
                                     {"lsn", meta->lsn},
                                     {"written_version", written->version},
                                     {"written_lsn", written->lsn},
                                     {"action", "full load"}});
    return Dataset::kOlder;
  }
  return Dataset::kCurrent;
}

}  // namespace

Status Watch(const CacheOptions& given, Logger& log, std::stop_token stop) {
  std::optional<Written> written;
  CacheOptions options = given;
  // Active/standby: the cache's lease token fences pdv:meta and the buckets.
  auto work = [&](pg::LeaseHold& hold) -> Status {
    std::stop_token stop = hold.stop_token();
    if (options.fence_token != hold.token()) {
      options.fence_token = hold.token();
      written.reset();  // another holder may have written since
    }
    auto listener = pg::Connection::Connect(options.warehouse_url);
    if (!listener.ok()) return listener.status();
    auto redis = redis::Client::Connect(options.redis_url);
    if (!redis.ok()) return redis.status();
    auto wh = warehouse::ConnectPostgresWarehouse(options.warehouse_url);
    if (!wh.ok()) return wh.status();
    if (auto l = listener->Exec(std::string("LISTEN ") + kDimensionChannel); !l.ok()) {
      return l.status();
    }
    IncrementalScripts scripts;  // loaded on this connection's first sync
    // Catch up once (a new connection: check everything), then on every notification;
    // a burst becomes one sync. Without one, a check every check_interval.
    bool notified = true;
    while (!stop.stop_requested()) {
      if (Status kept = hold.lease().Keep(); !kept.ok()) return kept;
      auto dataset = CheckDataset(*redis, written, log);
      if (!dataset.ok()) return dataset.status();
      // Keys first: restoring them is quick, and terminals get their answers as soon
      // as the reload switches.
      if (options.restore_api_keys) {
        if (Status s = options.restore_api_keys(*redis); !s.ok()) return s;
      }
      if (*dataset != Dataset::kCurrent || notified) {
        auto synced = *dataset != Dataset::kCurrent
                          ? SyncFull(options, log, stop)
                          : SyncIncrementalOn(*redis, **wh, scripts, options, log, stop);
        if (!synced.ok()) return synced.status();
        written = Written{synced->version, synced->lsn};
      }
      hold.Healthy();
      if (Status waited =
              pg::WaitForNotifications(*listener, stop, options.check_interval, &notified);
          !waited.ok()) {
        return Status::Error("warehouse: " + waited.message(), waited.code());
      }
    }
    return Status::Ok();
  };
  return pg::RunUnderLease({.lease = {.warehouse_url = options.warehouse_url, .stage = "cache"},
                            .retry_event = "cache_watch_retry"},
                           log, stop, work);
}

}  // namespace pdv::cache
