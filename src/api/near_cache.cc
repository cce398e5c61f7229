#include "api/near_cache.h"

namespace pdv::api {

size_t NearCache::Probe(const Hash& hash, uint64_t tag) const {
  const size_t mask = slots_.size() - 1;
  for (size_t i = tag & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.tag == 0 || (s.tag == tag && entries_[s.entry].hash == hash)) return i;
  }
}

const cache::CustomerRecord* NearCache::Get(const Hash& hash, uint64_t version,
                                            uint32_t bucket) const {
  if (slots_.empty()) return nullptr;
  const Slot& s = slots_[Probe(hash, Tag(hash))];
  if (s.tag == 0) return nullptr;
  const Entry& e = entries_[s.entry];
  if (e.version != version || e.epoch != Epoch(bucket)) return nullptr;
  return &e.record;
}

void NearCache::Put(const Hash& hash, uint64_t version, uint32_t bucket,
                    const cache::CustomerRecord& r, const Ticket& ticket) {
  if (ticket.global != global_ || ticket.bucket != Epoch(bucket)) return;
  const uint64_t tag = Tag(hash);
  if (!slots_.empty()) {
    if (Slot& s = slots_[Probe(hash, tag)]; s.tag != 0) {
      entries_[s.entry] = Entry{hash, version, ticket.bucket, r};
      return;
    }
  }
  if (entries_.size() >= max_entries_) Clear();  // bounded memory: start over
  if ((entries_.size() + 1) * 2 > slots_.size()) Grow();
  slots_[Probe(hash, tag)] = Slot{tag, static_cast<uint32_t>(entries_.size())};
  entries_.push_back(Entry{hash, version, ticket.bucket, r});
}

void NearCache::Grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(std::max<size_t>(1024, old.size() * 2), Slot{});
  for (const Slot& s : old) {
    if (s.tag != 0) slots_[Probe(entries_[s.entry].hash, s.tag)] = s;
  }
}

void NearCache::Invalidate(uint32_t bucket) {
  if (bucket >= epochs_.size()) epochs_.resize(size_t{bucket} + 1, 0);
  ++epochs_[bucket];
}

void NearCache::Clear() {
  entries_.clear();
  slots_.assign(slots_.size(), Slot{});
  ++global_;
}

}  // namespace pdv::api
