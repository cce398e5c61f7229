#pragma once

// Public interface of the cache stage: loads the POS dimension
// (marts.dim_clientes_clube) into Redis in the layout of record.h.

#include <chrono>
#include <cstdio>
#include <functional>
#include <stop_token>
#include <string>

#include "cache/record.h"
#include "common/log.h"
#include "common/status.h"
#include "redis/client.h"

namespace pdv::cache {

// NOTIFY channel the transform stage signals after the dimension changed.
inline constexpr char kDimensionChannel[] = "pdv_dim";

struct CacheOptions {
  std::string warehouse_url;
  std::string redis_url;
  size_t batch = 2000;  // commands per pipeline round trip
  // A full load groups its writes by bucket in two batches of half this each (one
  // filling while the other is sent): its memory, whatever the number of customers.
  size_t full_load_batch_bytes = 64 << 20;
  // How long the previous version stays after a full load switched away from it, for
  // readers that looked the version up just before the switch.
  std::chrono::milliseconds old_version_grace{2000};
  std::FILE* progress = nullptr;
  // How long the replicas a failover could promote have to acknowledge a batch before
  // the position moves past it (redis::Client::WaitForReplicas); past it, the sync fails
  // and is retried.
  std::chrono::milliseconds replica_ack_timeout{1000};
  // Seconds to keep retrying (with backoff) while Redis or the warehouse is unreachable.
  double retry_timeout_s = 30;
  // Watch: how often Redis is checked for a lost or older dataset when no NOTIFY comes.
  std::chrono::milliseconds check_interval{1000};
  // Watch: called at every check with the stage's Redis connection, to refill API keys
  // from their durable home if Redis lost them (src/api/apikeys.h). Empty: not done.
  std::function<Status(redis::Client&)> restore_api_keys;
  // The cache watch's lease token (pg/lease.h): pdv:meta refuses writes with an older
  // one (error code "lease_lost"). 0: not fenced (a sync run by hand).
  int64_t fence_token = 0;
};

// pdv:meta as stored in Redis now (cache/record.h's ParseMeta): every reader of the meta
// key goes through this or ParseMeta. Fails when Redis fails or the key is malformed.
pdv::Result<Meta> ReadMeta(redis::Client& redis);

struct SyncResult {
  uint64_t version = 0;
  uint64_t applied = 0;           // rows written or removed
  uint64_t lsn = 0;               // the position reached
  double bytes_per_customer = 0;  // Redis memory of the version's keys / customers (full)
};

// Writes the whole dimension as a new version beside the current one, switches
// pdv:meta to it in one step (and publishes the switch), then removes the old version.
// Readers never see a customer missing or half-written. Serialised with other syncs by
// a lock in Redis.
pdv::Result<SyncResult> SyncFull(const CacheOptions& options, Logger& log, std::stop_token stop);

// Applies the dimension's changes since the stored position, in _lsn order; an older
// state never overwrites a newer one (the check runs inside Redis), tombstones remove
// the customer. The position advances only after the writes it covers are acknowledged,
// so a restart re-applies at most a batch, harmlessly. Without a version: a full load.
pdv::Result<SyncResult> SyncIncremental(const CacheOptions& options, Logger& log,
                                        std::stop_token stop);

// SyncFull or SyncIncremental, retried with backoff (100 ms doubling to 5 s, each retry
// logged) while the failure is an unreachable server, for up to retry_timeout_s.
pdv::Result<SyncResult> SyncWithRetry(bool full, const CacheOptions& options, Logger& log,
                                      std::stop_token stop);

// One customer's record in Redis now (the current version), looked up by cpf_hash (64
// hex characters): nullopt when absent or when no version is loaded.
pdv::Result<std::optional<CustomerRecord>> FindCustomer(redis::Client& redis,
                                                        std::string_view cpf_hash);

struct Erased {
  int records = 0;     // cpf-index entries removed (the customer's record)
  int id_entries = 0;  // id-index entries removed
};
// Removes one customer from Redis (LGPD erasure): its record under `cpf_hash` if it is
// that customer's, and its id-index entry, in the current version. Under the sync lock,
// so a sync in flight finishes first and the next one reads a dimension without the
// customer. The removal is a write to the key, so every client's near-cache of it is
// invalidated (tracking); it returns once the replicas have it.
pdv::Result<Erased> EraseCustomer(const CacheOptions& options, std::string_view cpf_hash,
                                  std::string_view cliente_id, Logger& log, std::stop_token stop);

// Active/standby: several watches of one Redis take turns through the "cache" lease in
// the warehouse (pg/lease.h); the active one fences pdv:meta with its token.
// Incremental syncs on every NOTIFY pdv_dim (bursts coalesced), until stopped. Between
// notifications, every check_interval (and at once after reconnecting), Redis is checked:
// pdv:meta gone (data lost: FLUSHALL, a restart without persistence, a failover to an
// empty replica) or older than what this process last wrote (a restart from an older
// snapshot) means a full load; then restore_api_keys runs.
Status Watch(const CacheOptions& options, Logger& log, std::stop_token stop);

}  // namespace pdv::cache
