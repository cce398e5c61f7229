#include "api/near_cache.h"

namespace pdv::api {

const cache::CustomerRecord* NearCache::Get(const Hash& hash, uint64_t version,
                                            uint32_t bucket) const {
  auto it = entries_.find(hash);
  if (it == entries_.end() || it->second.version != version || it->second.epoch != Epoch(bucket)) {
    return nullptr;
  }
  return &it->second.record;
}

void NearCache::Put(const Hash& hash, uint64_t version, uint32_t bucket,
                    const cache::CustomerRecord& r, const Ticket& ticket) {
  if (ticket.global != global_ || ticket.bucket != Epoch(bucket)) return;
  if (entries_.size() >= max_entries_ && !entries_.contains(hash)) Clear();  // bounded memory
  entries_.insert_or_assign(hash, Entry{version, ticket.bucket, r});
}

void NearCache::Invalidate(uint32_t bucket) {
  if (bucket >= epochs_.size()) epochs_.resize(size_t{bucket} + 1, 0);
  ++epochs_[bucket];
}

void NearCache::Clear() {
  entries_.clear();
  ++global_;
}

}  // namespace pdv::api
