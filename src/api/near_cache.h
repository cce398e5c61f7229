#pragma once

// The in-process near-cache of customer records, kept coherent by Redis's client-side
// caching (CLIENT TRACKING with REDIRECT): Redis names the bucket keys that changed, and
// every record of those buckets is dropped. Epochs close the race between a read in
// flight and an invalidation: a reply is cached only if nothing about its bucket was
// invalidated since the read was sent. Single-threaded (one per event loop).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "cache/record.h"

namespace pdv::api {

class NearCache {
 public:
  explicit NearCache(size_t max_entries = 2'000'000) : max_entries_(max_entries) {}

  struct Ticket {
    uint64_t global = 0;
    uint64_t bucket = 0;
  };
  // Taken when a read is sent; Put succeeds only with an unchanged ticket.
  Ticket Take(const std::string& bucket_key) const;

  const cache::CustomerRecord* Get(const std::string& bucket_key, const std::string& field) const;
  void Put(const std::string& bucket_key, const std::string& field, const cache::CustomerRecord& r,
           const Ticket& ticket);
  void Invalidate(std::string_view bucket_key);
  // Everything (the invalidation link or the tracked connection dropped).
  void Clear();

  size_t size() const { return entries_; }

 private:
  struct Bucket {
    uint64_t epoch = 0;
    std::unordered_map<std::string, cache::CustomerRecord> records;
  };
  size_t max_entries_;
  uint64_t global_ = 0;
  size_t entries_ = 0;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace pdv::api
