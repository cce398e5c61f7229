// One customer in the cache (cache.h): FindCustomer reads its record, EraseCustomer
// removes it and its id-index entry (LGPD erasure, run by `pdv subject forget`).

#include "cache/cache.h"
#include "cache/record.h"
#include "cache/scripts.h"
#include "cache/sync_lock.h"

namespace pdv::cache {

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
  Scripts scripts;  // the lock's
  auto lock = SyncLock::Acquire(*redis, scripts, log, stop);
  if (!lock.ok()) return lock.status();
  auto meta = ReadMeta(*redis);
  if (!meta.ok()) return meta.status();
  Erased erased;
  if (!meta->exists) return erased;
  const Layout& layout = meta->layout;
  std::string id_bytes(reinterpret_cast<const char*>(id->data()), 16);
  auto removed = EvalWhole(*redis, Script::kEraseRecord, layout.CpfKey(*hash),
                           {Layout::CpfField(*hash), id_bytes});
  if (!removed.ok()) return removed.status();
  erased.records = static_cast<int>(removed->integer());
  auto pointer = EvalWhole(*redis, Script::kErasePointer, layout.IdKey(*id),
                           {Layout::IdField(*id), Layout::CpfField(*hash)});
  if (!pointer.ok()) return pointer.status();
  erased.id_entries = static_cast<int>(pointer->integer());
  if (Status s = redis->WaitForReplicas(options.replica_ack_timeout); !s.ok()) return s;
  return erased;
}

}  // namespace pdv::cache
