#pragma once

// The in-process near-cache of customer records, kept coherent by Redis's client-side
// caching (CLIENT TRACKING with REDIRECT): Redis names the bucket keys that changed, and
// every record of those buckets is dropped. Epochs close the race between a read in
// flight and an invalidation: a reply is cached only if nothing about its bucket was
// invalidated since the read was sent. Single-threaded (one per event loop).
//
// One flat table keyed by the CPF's HMAC: a lookup is one hash probe, with no key text
// built and no per-bucket table (the two-level table of bucket key then field was 8% of
// serve's CPU under bench/api). A bucket's invalidation bumps its epoch; records put
// under an older epoch are stale from then on and are overwritten or cleared later.

#include <array>
#include <cstdint>
#include <cstring>
#include <unordered_map>
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
    uint64_t version;
    uint64_t epoch;  // of its bucket when it was put
    cache::CustomerRecord record;
  };
  // The HMAC is uniform: 8 of its bytes (not those the bucket is made of) are the hash.
  struct HashBytes {
    size_t operator()(const Hash& h) const {
      size_t x;
      std::memcpy(&x, h.data() + 16, sizeof(x));
      return x;
    }
  };
  uint64_t Epoch(uint32_t bucket) const { return bucket < epochs_.size() ? epochs_[bucket] : 0; }

  size_t max_entries_;
  uint64_t global_ = 0;
  std::vector<uint64_t> epochs_;  // by bucket number; grown by invalidations
  std::unordered_map<Hash, Entry, HashBytes> entries_;
};

}  // namespace pdv::api
