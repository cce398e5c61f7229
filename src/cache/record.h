#pragma once

// The cache's data layout in Redis, shared by the cache stage (writer) and the API
// (reader). One customer is one field of a small hash ("bucket"), so a lookup is one
// HGET and thousands of customers share a key's overhead (listpack encoding).
//
//   pdv:meta                      hash: version, bits, format (of the records), lsn and
//                                 lsn_id (the incremental position: its LSN and the
//                                 last cliente_id applied at it, "" for all), fence
//                                 (the newest writer's lease token)
//   pdv:c:v<version>:{<bucket>}   by cpf_hash: field = cpf_hash bytes 0..10 (binary),
//                                 value = Encode(CustomerRecord); and kFenceField
//   pdv:i:v<version>:{<bucket>}   by cliente_id: field = cliente_id bytes 0..8,
//                                 value = the customer's cpf_hash bytes 0..10; and
//                                 kFenceField
//
// <bucket> is the top `bits` bits of a mix of the id's first 8 bytes, in hex; the
// braces make it the Redis Cluster hash tag. A full load writes version N+1 beside N and
// switches pdv:meta in one fenced script (one HSET of version, bits, format and the
// position).

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "warehouse/warehouse.h"

namespace pdv::redis {
class Client;
}

namespace pdv::cache {

inline constexpr char kMetaKey[] = "pdv:meta";
inline constexpr char kLockKey[] = "pdv:lock";
// The start of every bucket key of the cpf index and of the id index, of any version.
inline constexpr std::string_view kCpfBucketPrefix = "pdv:c:";
inline constexpr std::string_view kIdBucketPrefix = "pdv:i:";
// Published (payload: the version) when a full load switches versions.
inline constexpr char kVersionChannel[] = "pdv:cache:version";
// The form of the records and fields under a version (pdv:meta's format): 1 had 12-byte
// cpf fields, the campaign in a byte of its own and elegivel_a_partir_de as a date; 2 has
// 10-byte fields, the campaign in the flags byte and elegivel_a_partir_de relative to
// atualizado_em (5-6 bytes fewer per customer; 4.2 B less Redis memory at 100k).
inline constexpr uint64_t kRecordFormat = 2;

struct CustomerRecord {
  uint64_t lsn = 0;  // RAW LSN of the change this state comes from: newer wins
  std::array<uint8_t, 16> cliente_id{};
  bool ativo = false;  // status_clube = 'ATIVO'
  bool opt_in_marketing = false;
  std::optional<int64_t> elegivel_a_partir_de;  // Unix seconds
  int64_t atualizado_em = 0;                    // Unix seconds
  int64_t ticket_centavos = 0;
  std::string origem_campanha;
  std::string primeiro_nome;

  friend bool operator==(const CustomerRecord&, const CustomerRecord&) = default;
};

// Compact binary form: LSN (8 bytes big-endian first, so byte order is LSN order), id,
// flags, varints, the campaign as one byte when it is a known one, the first name. Pure.
std::string Encode(const CustomerRecord& r);
pdv::Result<CustomerRecord> Decode(std::string_view bytes);

// The record of one dimension row (what a sync writes and a reconcile expects); an error
// for an id that is not a UUID or a status_clube other than ATIVO/INATIVO.
pdv::Result<CustomerRecord> RecordFromDimension(const warehouse::DimensionRow& d);

// One dimension row as the cache stores it: what a sync writes and a reconcile expects.
struct DimensionRecord {
  const warehouse::DimensionRow& row;  // as read
  // An erased customer's tombstone names no one (src/subject/): nothing is to be written
  // for it (the erasure removed the record itself), and nothing below is set.
  bool nameless = false;
  std::array<uint8_t, 32> hash{};        // cpf_hash: the record's bucket and field
  std::array<uint8_t, 16> id{};          // cliente_id: the id index's entry
  std::optional<CustomerRecord> record;  // nullopt for a tombstone
};

// Which rows of the dimension to read (warehouse::Warehouse::ReadDimension's arguments).
struct DimensionRead {
  uint64_t after_lsn = 0;
  std::string after_id;
  bool live_only = false;
  size_t limit = 0;             // 0: all
  uint64_t* max_lsn = nullptr;  // set to the dimension's highest _lsn, when given
};

// The one reader of the dimension into records: every row of `read`, in its order, to
// `each`. A row with a malformed cpf_hash, cliente_id or status_clube is an error naming
// the customer; a failure of the warehouse or of `each` ends the read with it. Uses `wh`
// only for the call.
Status ReadDimensionRecords(warehouse::Warehouse& wh, const DimensionRead& read,
                            const std::function<Status(const DimensionRecord&)>& each);

// The one reader of whole buckets: every customer field of the bucket hash `key` (of
// either index) and its value, by one HGETALL, the fence field (Layout::kFenceField)
// left out. Fails as Redis does or as `each` does; the views live until `each` returns.
Status ScanBucket(
    redis::Client& redis, std::string_view key,
    const std::function<Status(std::string_view field, std::string_view value)>& each);

// 32 bytes from 64 hex characters (cpf_hash), 16 from a UUID's text.
pdv::Result<std::array<uint8_t, 32>> HashBytes(std::string_view hex);
pdv::Result<std::array<uint8_t, 16>> UuidBytes(std::string_view text);
std::string UuidText(const std::array<uint8_t, 16>& id);
// The same text appended to `out` (every API answer writes one).
void AppendUuidText(std::string* out, const std::array<uint8_t, 16>& id);

struct Layout {
  uint64_t version = 0;
  int bits = 8;  // buckets = 2^bits

  std::string CpfKey(const std::array<uint8_t, 32>& hash) const;
  // 80 bits of the HMAC, of which ~63 vary within a bucket of ~128: two customers share
  // a field with a probability of about 1e-15 per bucket (about 1e-10 over 20M).
  static constexpr size_t kCpfFieldBytes = 10;
  static std::string CpfField(const std::array<uint8_t, 32>& hash);
  std::string IdKey(const std::array<uint8_t, 16>& id) const;
  static std::string IdField(const std::array<uint8_t, 16>& id);
  // The field of every bucket that holds the newest lease token of a cache watch that
  // wrote it (the fenced scripts of cache/scripts.h refuse an older one). Shorter than any customer
  // field (10 or 8 bytes), so it never collides with one; readers of whole buckets skip it.
  static constexpr std::string_view kFenceField = "fence";
  std::string CpfBucketKey(uint32_t bucket) const;
  // The bucket a cpf index key of any version names (what an invalidation carries), or
  // nullopt for any other key.
  static std::optional<uint32_t> CpfBucketOfKey(std::string_view key);
  std::string IdBucketKey(uint32_t bucket) const;
  uint32_t Bucket(const uint8_t* first8) const;
  uint32_t buckets() const { return 1u << bits; }
  // The bucket keys of both indexes of buckets [first, first + count) of this version (to
  // remove or measure a version a range at a time: memory that does not grow with it).
  std::vector<std::string> BucketKeys(uint32_t first, uint32_t count) const;
};

// pdv:meta as stored: the version in use and its bucket bits (absent before the first
// full load, or after Redis lost its data), and the incremental position.
struct Meta {
  Layout layout;
  uint64_t lsn = 0;
  std::string lsn_id;   // the last cliente_id applied at `lsn` ("": all of them)
  bool exists = false;  // a version of this release's record format is loaded
  // A version of an older format is there (exists is then false): a full load replaces it.
  bool older_format = false;
};
// The one parser of pdv:meta, from its fields and values (HGETALL's pairs, or HMGET's
// answers with absent fields left out). A malformed value is an error naming the field:
// never an exception, so readers in event loops can treat it as "unavailable".
pdv::Result<Meta> ParseMeta(const std::vector<std::pair<std::string, std::string>>& fields);

// Bucket bits for `customers`: about 128 customers per bucket (the full load raises
// hash-max-listpack-entries to 1024 if lower, so buckets keep the compact encoding), at
// least 2^4 buckets.
int BucketBitsFor(uint64_t customers);

}  // namespace pdv::cache
