#include "api/near_cache.h"

namespace pdv::api {

NearCache::Ticket NearCache::Take(const std::string& bucket_key) const {
  auto it = buckets_.find(bucket_key);
  return {global_, it == buckets_.end() ? 0 : it->second.epoch};
}

const cache::CustomerRecord* NearCache::Get(const std::string& bucket_key,
                                            const std::string& field) const {
  auto b = buckets_.find(bucket_key);
  if (b == buckets_.end()) return nullptr;
  auto r = b->second.records.find(field);
  return r == b->second.records.end() ? nullptr : &r->second;
}

void NearCache::Put(const std::string& bucket_key, const std::string& field,
                    const cache::CustomerRecord& r, const Ticket& ticket) {
  if (ticket.global != global_) return;
  Bucket& b = buckets_[bucket_key];
  if (b.epoch != ticket.bucket) return;
  if (entries_ >= max_entries_) Clear();  // bounded memory: start over
  auto [it, added] = buckets_[bucket_key].records.insert_or_assign(field, r);
  if (added) ++entries_;
}

void NearCache::Invalidate(std::string_view bucket_key) {
  auto it = buckets_.find(std::string(bucket_key));
  if (it == buckets_.end()) {
    // Unknown yet: a read of it may be in flight; its ticket (epoch 0) must not match.
    buckets_[std::string(bucket_key)].epoch = 1;
    return;
  }
  entries_ -= it->second.records.size();
  it->second.records.clear();
  ++it->second.epoch;
}

void NearCache::Clear() {
  buckets_.clear();
  entries_ = 0;
  ++global_;
}

}  // namespace pdv::api
