#pragma once

// The in-process near-cache of customer records, kept coherent by Redis's client-side
// caching (CLIENT TRACKING with REDIRECT): Redis names the bucket keys that changed, and
// every record of those buckets is dropped. Epochs close the race between a read in
// flight and an invalidation: a reply is cached only if nothing about its bucket was
// invalidated since the read was sent. Single-threaded (one per event loop).
//
// One open-addressing table keyed by the CPF's HMAC: a lookup is a probe of a slot array
// then one read of the entry, with no key text built and no per-bucket table (the
// two-level table of bucket key then field was 8% of serve's CPU under bench/api, and
// std::unordered_map's chain still cost three dependent cache misses a lookup: 6%). A
// bucket's invalidation bumps its epoch; records put under an older epoch are stale from
// then on, and are overwritten in place or cleared later (entries are never erased one by
// one, so the table needs no tombstones).

#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cache/record.h"

namespace pdv::api {

class NearCache {
 public:
  using Hash = std::array<uint8_t, 32>;
  explicit NearCache(size_t max_entries = 2'000'000) : max_entries_(max_entries) {}

  struct Ticket {
    uint64_t global = 0;
    uint64_t bucket = 0;
  };
  // Taken when a read of `bucket` is sent; Put succeeds only with an unchanged ticket.
  Ticket Take(uint32_t bucket) const { return {global_, Epoch(bucket)}; }

  // The record of `hash` in layout `version`, bucket `bucket`, if cached and current.
  const cache::CustomerRecord* Get(const Hash& hash, uint64_t version, uint32_t bucket) const;
  void Put(const Hash& hash, uint64_t version, uint32_t bucket, const cache::CustomerRecord& r,
           const Ticket& ticket);
  // Every record of `bucket` (of any version: a spare miss at worst).
  void Invalidate(uint32_t bucket);
  // Everything (the invalidation link or the tracked connection dropped).
  void Clear();

  // Entries held, stale ones included (what bounds the memory).
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    Hash hash;
    uint64_t version;
    uint64_t epoch;  // of its bucket when it was put
    cache::CustomerRecord record;
  };
  struct Slot {
    uint64_t tag = 0;    // 8 bytes of the HMAC (not those the bucket is made of), never 0
    uint32_t entry = 0;  // index into entries_
  };
  static uint64_t Tag(const Hash& h) {
    uint64_t x;
    std::memcpy(&x, h.data() + 16, sizeof(x));
    return x | 1;
  }
  // The slot holding `hash`, or the empty slot where it would go.
  size_t Probe(const Hash& hash, uint64_t tag) const;
  void Grow();
  uint64_t Epoch(uint32_t bucket) const { return bucket < epochs_.size() ? epochs_[bucket] : 0; }

  size_t max_entries_;
  uint64_t global_ = 0;
  std::vector<uint64_t> epochs_;  // by bucket number; grown by invalidations
  std::vector<Slot> slots_;       // a power of two, at most half full
  std::vector<Entry> entries_;
};

}  // namespace pdv::api
