// cache::Watch (cache.h): the cache stage as a service under the "cache" lease. It owns
// the stage's connections (each opened once and kept while the lease is held, opened
// again only once it broke), the checks of what Redis holds, and when to sync.

#include <memory>
#include <optional>

#include "cache/cache.h"
#include "cache/scripts.h"
#include "cache/sync.h"
#include "pg/connection.h"
#include "pg/lease.h"
#include "pg/lease_runner.h"
#include "pg/notifications.h"
#include "warehouse/warehouse.h"

namespace pdv::cache {
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

// The watch's connections: Redis (with its scripts), the warehouse the syncs read, and
// the warehouse connection that LISTENs. Each is opened when first needed and kept across
// the work's retries while the lease is held; Forget drops only those a failure broke,
// Close all of them (the lease lost: a standby holds none).
class Connections {
 public:
  explicit Connections(const CacheOptions& options) : options_(options) {}

  // Opens whatever is not open. Fails as the connection that could not be opened.
  Status Open() {
    if (!redis_) {
      auto r = redis::Client::Connect(options_.redis_url);
      if (!r.ok()) return r.status();
      redis_.emplace(std::move(*r));
      scripts_.Forget();  // loaded on the new connection's first sync
    }
    if (!warehouse_) {
      auto w = warehouse::ConnectPostgresWarehouse(options_.warehouse_url);
      if (!w.ok()) return w.status();
      warehouse_ = std::move(*w);
    }
    if (!listener_) {
      auto l = pg::Connection::Connect(options_.warehouse_url);
      if (!l.ok()) return l.status();
      if (auto r = l->Exec(std::string("LISTEN ") + kDimensionChannel); !r.ok()) return r.status();
      listener_.emplace(std::move(*l));
    }
    return Status::Ok();
  }
  // Drops the connections that `failed` (a failure of the work) shows broken.
  void Forget(const Status& failed) {
    if (redis::IsConnectionError(failed)) redis_.reset();
    if (pg::IsConnectionLost(failed)) warehouse_.reset();
    if (listener_ && listener_->broken()) listener_.reset();
  }
  void ForgetListener() { listener_.reset(); }
  void Close() {
    redis_.reset();
    warehouse_.reset();
    listener_.reset();
  }
  redis::Client& redis() { return *redis_; }
  pg::Connection& listener() { return *listener_; }
  SyncConnections sync() { return {*redis_, *warehouse_, scripts_}; }

 private:
  const CacheOptions& options_;
  std::optional<redis::Client> redis_;
  Scripts scripts_;
  std::unique_ptr<warehouse::Warehouse> warehouse_;
  std::optional<pg::Connection> listener_;
};

}  // namespace

Status Watch(const CacheOptions& given, Logger& log, std::stop_token stop) {
  std::optional<Written> written;
  CacheOptions options = given;
  Connections connections(options);
  // One round of work under the lease, on the kept connections.
  auto serve = [&](pg::LeaseHold& hold) -> Status {
    std::stop_token stop = hold.stop_token();
    if (options.fence_token != hold.token()) {
      options.fence_token = hold.token();
      written.reset();  // another holder may have written since
    }
    if (Status s = connections.Open(); !s.ok()) return s;
    // Catch up once (a new connection or a retry: check everything), then on every
    // notification; a burst becomes one sync. Without one, a check every check_interval.
    bool notified = true;
    while (!stop.stop_requested()) {
      if (Status kept = hold.lease().Keep(); !kept.ok()) return kept;
      auto dataset = CheckDataset(connections.redis(), written, log);
      if (!dataset.ok()) return dataset.status();
      // Keys first: restoring them is quick, and terminals get their answers as soon
      // as the reload switches.
      if (options.restore_api_keys) {
        if (Status s = options.restore_api_keys(connections.redis()); !s.ok()) return s;
      }
      if (*dataset != Dataset::kCurrent || notified) {
        auto synced = *dataset != Dataset::kCurrent
                          ? SyncFullOn(connections.sync(), options, log, stop)
                          : SyncIncrementalOn(connections.sync(), options, log, stop);
        if (!synced.ok()) return synced.status();
        written = Written{synced->version, synced->lsn};
      }
      hold.Healthy();
      if (Status waited = pg::WaitForNotifications(connections.listener(), stop,
                                                   options.check_interval, &notified);
          !waited.ok()) {
        connections.ForgetListener();
        return Status::Error("warehouse: " + waited.message(), waited.code());
      }
    }
    return Status::Ok();
  };
  // Active/standby: the cache's lease token fences pdv:meta and the buckets.
  auto work = [&](pg::LeaseHold& hold) -> Status {
    Status s = serve(hold);
    if (hold.stop_token().stop_requested()) {
      connections.Close();  // stopped, or the lease lost
    } else {
      connections.Forget(s);
    }
    return s;
  };
  return pg::RunUnderLease({.lease = {.warehouse_url = options.warehouse_url, .stage = "cache"},
                            .retry_event = "cache_watch_retry"},
                           log, stop, work);
}

}  // namespace pdv::cache
