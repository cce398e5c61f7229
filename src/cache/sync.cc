// The cache's two syncs of the dimension into Redis (cache.h): the full load (a new
// version beside the current one, switched in one fenced write) and the incremental sync
// (from pdv:meta's position, in _lsn order); pdv:meta's reader; the one-shot syncs and
// their retries. The scripts they run are in scripts.*, the lock in sync_lock.*, the
// service that runs them in watch.cc.

#include "cache/sync.h"

#include <fmt/format.h>

#include <future>
#include <optional>

#include "cache/bucket_batch.h"
#include "cache/record.h"
#include "cache/sync_lock.h"
#include "common/backoff.h"
#include "common/progress.h"
#include "pg/connection.h"
#include "pg/reconnect.h"
#include "redis/pipeline.h"

namespace pdv::cache {
namespace {

using std::chrono::milliseconds;

// Sets `fields` (name, value, ...) of pdv:meta, fenced by `fence_token`.
Status WriteMeta(const SyncConnections& c, int64_t fence_token,
                 const std::vector<std::string>& fields) {
  const std::string token = std::to_string(fence_token);
  std::vector<std::string_view> args = {token};
  args.insert(args.end(), fields.begin(), fields.end());
  return FencedAsLeaseLost(c.scripts.Run(c.redis, Script::kMeta, kMetaKey, args).status());
}

std::string Lsn8(uint64_t lsn) {
  std::string out;
  for (int s = 56; s >= 0; s -= 8) out.push_back(static_cast<char>(lsn >> s));
  return out;
}

std::string IdBytes(const std::array<uint8_t, 16>& id) {
  return std::string(reinterpret_cast<const char*>(id.data()), id.size());
}

// Buckets per round trip when a whole version is removed or measured.
constexpr uint32_t kBucketsPerRound = 500;

Status RemoveVersion(redis::Client& redis, const Layout& layout) {
  redis::Pipeline p(redis);
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
  redis::Pipeline p(redis);
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

// Buckets of ~128 customers (up to ~200) must stay listpacks, the compact encoding.
void KeepBucketsCompact(redis::Client& redis, Logger& log) {
  if (auto limit = redis.Command({"CONFIG", "GET", "hash-max-listpack-entries"});
      limit.ok() && limit->elements() == 2 && std::stoll(limit->element(1)->str) < 1024) {
    if (auto set = redis.Command({"CONFIG", "SET", "hash-max-listpack-entries", "1024"});
        !set.ok()) {
      log.Warn("cache_redis_config", {{"error", set.message()},
                                      {"hint", "set hash-max-listpack-entries to 1024 or more"}});
    }
  }
}

// `sync` on connections of its own, opened for it.
template <class Sync>
pdv::Result<SyncResult> OnNewConnections(const CacheOptions& options, Sync&& sync) {
  auto redis = redis::Client::Connect(options.redis_url);
  if (!redis.ok()) return redis.status();
  auto wh = warehouse::ConnectPostgresWarehouse(options.warehouse_url);
  if (!wh.ok()) return wh.status();
  Scripts scripts;
  return sync(SyncConnections{*redis, **wh, scripts});
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

pdv::Result<SyncResult> SyncFullOn(const SyncConnections& c, const CacheOptions& options,
                                   Logger& log, std::stop_token stop) {
  redis::Client& redis = c.redis;
  auto lock = SyncLock::Acquire(redis, c.scripts, log, stop, options.fence_token);
  if (!lock.ok()) return lock.status();
  auto meta = ReadMeta(redis);
  if (!meta.ok()) {
    if (redis::IsConnectionError(meta.status())) return meta.status();
    // A malformed meta is rewritten whole by this load's switch.
    log.Warn("cache_meta_malformed", {{"error", meta.message()}, {"action", "full load"}});
    meta = Meta{};
  }

  // Size the buckets for the data (about 128 customers each): count first.
  auto counted = c.warehouse.CountDimension();
  if (!counted.ok()) return counted.status();
  uint64_t count = *counted, max_lsn = 0;
  Layout next{.version = meta->layout.version + 1, .bits = BucketBitsFor(count)};
  KeepBucketsCompact(redis, log);
  // A full load killed before its switch left part of this version behind.
  if (Status s = RemoveVersion(redis, next); !s.ok()) return s;

  std::optional<Progress> progress;
  if (options.progress) progress.emplace(options.progress, "cache_full_load", count);
  redis::Pipeline pipeline(redis);
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
  // The sending thread refreshes the lock after each round trip; while none is under way
  // (the first batch filling, or the warehouse slower than Redis) the reader does, or the
  // lock's 5 s would run out on a slow or busy warehouse before the first batch is full.
  auto last_refresh = std::chrono::steady_clock::now();
  auto refresh_while_reading = [&]() -> Status {
    auto now = std::chrono::steady_clock::now();
    if (now - last_refresh < std::chrono::seconds(1)) return Status::Ok();
    if (sending.valid()) {
      if (sending.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
        return Status::Ok();
      }
      if (Status s = sending.get(); !s.ok()) return s;
    }
    last_refresh = now;
    return lock->Refresh();
  };
  Status read = ReadDimensionRecords(
      c.warehouse, {.live_only = true, .max_lsn = &max_lsn},
      [&](const DimensionRecord& d) -> Status {
        if (stop.stop_requested()) return Status::Error("stopped during a full load");
        std::string cpf_field = Layout::CpfField(d.hash);
        batch.Add(next.Bucket(d.hash.data()), cpf_field, Encode(*d.record));
        batch.Add(uint64_t{1} << 32 | next.Bucket(d.id.data()), Layout::IdField(d.id), cpf_field);
        ++written;
        if (batch.full()) return hand_off();
        return (written & 4095) == 0 ? refresh_while_reading() : Status::Ok();
      });
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
  if (Status s = redis.WaitForReplicas(options.replica_ack_timeout); !s.ok()) return s;

  // The switch: one HSET, then the announcement.
  if (Status s = WriteMeta(
          c, options.fence_token,
          {"version", std::to_string(next.version), "bits", std::to_string(next.bits), "format",
           std::to_string(kRecordFormat), "lsn", std::to_string(max_lsn), "lsn_id", ""});
      !s.ok()) {
    return s;
  }
  (void)redis.Command({"PUBLISH", kVersionChannel, std::to_string(next.version)});
  double per_customer = MemoryPerCustomer(redis, next, written);
  log.Info("cache_full_load_done", {{"version", next.version},
                                    {"customers", written},
                                    {"bucket_bits", next.bits},
                                    {"lsn", max_lsn},
                                    {"redis_bytes_per_customer", per_customer}});
  if (meta->exists || meta->older_format) {
    pg::SleepFor(options.old_version_grace, stop);
    if (Status s = RemoveVersion(redis, meta->layout); !s.ok()) return s;
  }
  return SyncResult{next.version, written, max_lsn, per_customer};
}

pdv::Result<SyncResult> SyncIncrementalOn(const SyncConnections& c, const CacheOptions& options,
                                          Logger& log, std::stop_token stop) {
  redis::Client& redis = c.redis;
  auto started = std::chrono::steady_clock::now();
  {
    auto meta = ReadMeta(redis);
    if (!meta.ok()) return meta.status();
    if (!meta->exists) return SyncFullOn(c, options, log, stop);
  }
  auto lock = SyncLock::Acquire(redis, c.scripts, log, stop, options.fence_token);
  if (!lock.ok()) return lock.status();
  auto meta = ReadMeta(redis);  // again, under the lock
  if (!meta.ok()) return meta.status();
  if (Status s = c.scripts.Load(redis); !s.ok()) return s;
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
    ScriptBatch batch(redis, c.scripts);
    uint64_t batch_lsn = result.lsn;
    std::string batch_id = position_id;
    size_t read_rows = 0;
    // Two scripts a row: the record (written or removed), then the id index's pointer.
    Status read = ReadDimensionRecords(
        c.warehouse, {.after_lsn = result.lsn, .after_id = position_id, .limit = options.batch},
        [&](const DimensionRecord& d) -> Status {
          ++read_rows;
          batch_lsn = d.row.lsn;
          batch_id = d.row.cliente_id;
          if (d.nameless) return Status::Ok();
          std::string cpf_field = Layout::CpfField(d.hash);
          if (d.record) {
            batch.Add(Script::kUpsert,
                      {layout.CpfKey(d.hash), token, cpf_field, Encode(*d.record)});
          } else {
            batch.Add(Script::kRemove,
                      {layout.CpfKey(d.hash), token, cpf_field, Lsn8(d.row.lsn), IdBytes(d.id)});
            cpf_field.clear();  // the pointer goes too
          }
          batch.Add(Script::kSwap, {layout.IdKey(d.id), token, Layout::IdField(d.id), cpf_field});
          rows.push_back({d.hash, d.id, d.row.lsn});
          return Status::Ok();
        });
    if (!read.ok()) return read;
    if (read_rows == 0) break;
    // A customer whose cpf_hash changed: remove the entry under the old one.
    std::vector<std::string> moved_from(rows.size());
    Status applied = batch.Drain([&](size_t i, redis::Reply& r) {
      if (i % 2 == 1 && r.type() == REDIS_REPLY_STRING) moved_from[i / 2] = std::string(r.str());
      return Status::Ok();
    });
    if (!applied.ok()) return FencedAsLeaseLost(applied);
    for (size_t k = 0; k < rows.size(); ++k) {
      const std::string& old = moved_from[k];
      if (old.empty() || old == Layout::CpfField(rows[k].hash)) continue;
      std::array<uint8_t, 32> old_hash{};
      std::copy(old.begin(), old.end(), old_hash.begin());
      batch.Add(Script::kRemove,
                {layout.CpfKey(old_hash), token, old, Lsn8(rows[k].lsn), IdBytes(rows[k].id)});
    }
    if (Status s = batch.Drain(); !s.ok()) return FencedAsLeaseLost(s);
    // Only now, with every write acknowledged by the masters and by the replicas that a
    // failover could promote, move the position: a failover loses no change behind it.
    if (Status s = redis.WaitForReplicas(options.replica_ack_timeout); !s.ok()) return s;
    if (Status s = WriteMeta(c, options.fence_token,
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

pdv::Result<SyncResult> SyncFull(const CacheOptions& options, Logger& log, std::stop_token stop) {
  return OnNewConnections(
      options, [&](const SyncConnections& c) { return SyncFullOn(c, options, log, stop); });
}

pdv::Result<SyncResult> SyncIncremental(const CacheOptions& options, Logger& log,
                                        std::stop_token stop) {
  return OnNewConnections(
      options, [&](const SyncConnections& c) { return SyncIncrementalOn(c, options, log, stop); });
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

}  // namespace pdv::cache
