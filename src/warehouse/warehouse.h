#pragma once

// The warehouse as the stages see it: one small interface, so that another engine can be
// added without touching them (ARCHITECTURE.md). PostgresWarehouse is the one we have.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace pdv::pg {
class Connection;
}

namespace pdv::warehouse {

// A source column as RAW keeps it: its name and SQL type ("text", "numeric(10,2)").
struct RawColumn {
  std::string name;
  std::string sql_type;
  bool key = false;
};

// What CDC has made durable: the last source transaction applied, by the LSN of its
// commit record, and the end of that record (the position acknowledged to the source).
struct Checkpoint {
  uint64_t commit_lsn = 0;
  uint64_t flush_lsn = 0;
  bool snapshot_done = false;
  // The source RAW was streamed from (IDENTIFY_SYSTEM): a promoted standby keeps the
  // system identifier and starts a new timeline; another database cluster has another
  // identifier. Empty / 0: not known (a checkpoint written before these were kept).
  std::string source_system_id;
  int source_timeline = 0;
};

// One RAW row's metadata (ARCHITECTURE.md): the source values come as COPY text fields.
struct RawChange {
  uint64_t lsn = 0;  // commit LSN of the change's transaction (snapshot: consistent point)
  int64_t seq = 0;   // position within it
  char op = 'c';     // r snapshot, c insert, u update, d delete, t truncate
  std::optional<int64_t> committed_at_us;  // Unix µs, UTC
  bool deleted = false;                    // d and t: _cdc_deleted_at = committed_at
};

// Rows appended to a RAW table in one warehouse transaction, made durable together with
// the checkpoint by Commit. Destroyed without Commit: rolled back, nothing written.
// A batch borrows its warehouse's connection: while it exists, make no other call on
// that Warehouse (its COPY may be open); ask the batch (LatestValue) instead. Destroy it
// before the Warehouse.
class RawBatch {
 public:
  virtual ~RawBatch() = default;
  // `fields`: the source columns' values, in the order given to BeginBatch, as COPY text
  // (tab-separated, \N for NULL, escaped), without a trailing newline.
  virtual Status Add(std::string_view fields, const RawChange& change) = 0;
  // Appends the key rows of a resync's deletions: every key whose latest RAW row is not a
  // deletion and that is absent from the rows added so far gets a 'd' row at `change`.
  virtual Status AddDeletionsOfMissingKeys(const RawChange& change) = 0;
  // The same, only for the keys listed (text values of the table's one key column): a
  // targeted re-read's deletions (a failover's reconciliation), not a whole snapshot's.
  virtual Status AddDeletionsOfMissingKeysAmong(const RawChange& change,
                                                const std::vector<std::string>& keys) = 0;
  // A resync: the snapshot rows added from now on are staged in a temporary table, not
  // appended to RAW; AddDeletionsOfMissingKeys compares with them, and
  // AppendChangedSnapshotRows appends those that differ from RAW's latest state.
  virtual Status StageSnapshotRows() = 0;
  // After a resync's staged snapshot rows (all at `change.lsn`) and its deletions:
  // appends to RAW the staged rows that differ from RAW's latest state before them, so
  // that what RAW already has is not appended again. How many were left out (unchanged).
  virtual pdv::Result<uint64_t> AppendChangedSnapshotRows(const RawChange& change) = 0;
  // Commits rows and checkpoint in one transaction, with NOTIFY `channel` (payload: the
  // commit LSN) delivered on commit. Returns once durable.
  virtual Status Commit(const Checkpoint& checkpoint, const std::string& channel) = 0;
  virtual uint64_t rows() const = 0;
  // Adds source columns to the RAW table inside this batch's transaction (a column
  // added at the source in the middle of a transaction); later Adds carry them.
  virtual Status AddColumns(const std::vector<RawColumn>& columns) = 0;
  // The latest non-null value of `column` (as text) for the row whose key columns equal
  // `key` (text, in `key_columns` order), as this batch sees RAW: what is committed plus
  // the rows added to this batch so far. Carries unchanged TOASTed values forward. Ends
  // an open COPY first (the next Add opens another), so each call costs round trips:
  // callers keep recent rows in memory and ask only for the rest.
  virtual pdv::Result<std::optional<std::string>> LatestValue(
      const std::vector<RawColumn>& key_columns, const std::vector<std::string>& key,
      const std::string& column) = 0;
};

// One customer of marts.dim_clientes_clube, as the cache stage reads it.
struct DimensionRow {
  std::string cliente_id;  // UUID text
  std::string cpf_hash;    // 64 hex
  std::string primeiro_nome;
  std::string status_clube;
  bool opt_in_marketing = false;
  int64_t ticket_centavos = 0;
  std::string origem_campanha;
  std::optional<int64_t> elegivel_a_partir_de;  // Unix seconds
  int64_t atualizado_em = 0;                    // Unix seconds
  uint64_t lsn = 0;                             // _lsn: RAW position of this state
  bool deleted = false;                         // _deleted: a tombstone
};

// An API key as kept durably: its SHA-256 (the key itself is stored nowhere).
struct ApiKeyRow {
  std::string hash;  // lowercase hex
  std::string name;
  std::string created_at;  // RFC 3339, UTC
  bool revoked = false;
};

class Warehouse {
 public:
  virtual ~Warehouse() = default;

  // Makes sure raw.<table> exists with these source columns (adding any it lacks: a
  // column added at the source appears in RAW) and the CDC metadata columns, and its
  // index by key and position; kLater leaves that index for a later call (a first
  // snapshot: building it once over every row is several times cheaper than inserting
  // millions of random keys into it, and readers need it only after).
  enum class KeyIndex { kNow, kLater };
  virtual Status EnsureRawTable(const std::string& table, const std::vector<RawColumn>& columns,
                                KeyIndex key_index) = 0;
  // The distinct values (as text) of `key_column` in raw.<table> rows at or after
  // `from_lsn`: the customers RAW changed from there on (a failover's lost range).
  virtual pdv::Result<std::vector<std::string>> RawKeysFrom(const std::string& table,
                                                            const std::string& key_column,
                                                            uint64_t from_lsn) = 0;
  // The checkpoint of `slot`, or nullopt before the first snapshot committed.
  virtual pdv::Result<std::optional<Checkpoint>> ReadCheckpoint(const std::string& slot) = 0;
  // A batch's transaction, begun with the subject write lock (common/erasure.h) held.
  virtual pdv::Result<std::unique_ptr<RawBatch>> BeginBatch(
      const std::string& table, const std::string& slot, const std::vector<RawColumn>& columns) = 0;
  // A statement every batch runs right before its COMMIT, in the same query (the lease's
  // fence, pg/lease.h): when it fails, Commit fails with code "lease_lost" and nothing
  // of the batch is written. Empty: none.
  virtual void SetFence(std::string sql) = 0;
  // API keys' durable home (platform.api_keys): the API reads them from Redis, which is
  // refilled from here after it lost its data. Insert or update by hash.
  virtual Status SaveApiKey(const ApiKeyRow& key) = 0;
  // Every key, oldest first.
  virtual pdv::Result<std::vector<ApiKeyRow>> ApiKeys() = 0;

  // The erasure register's cliente_id HMACs (common/erasure.h) with a sequence number
  // above `after_seq`, and the highest sequence number: a batch reads them after it began
  // (BeginBatch takes the subject write lock first), so an erasure either sees the batch
  // committed or the batch sees the erasure.
  struct ErasedIds {
    int64_t last_seq = 0;
    std::vector<std::string> cliente_id_hmacs;
  };
  virtual pdv::Result<ErasedIds> ErasedSince(int64_t after_seq) = 0;

  // Customers in the POS dimension (tombstones excluded).
  virtual pdv::Result<uint64_t> CountDimension() = 0;

  // Reads the POS dimension in (_lsn, cliente_id) order (all of it, after 0/0 and ""
  // with no limit: in no particular order, one sequential read): rows after the position
  // (`after_lsn`, `after_id`; "": past every id at after_lsn), at most `limit` (0: all), tombstones
  // included unless `live_only`. Customers changed in one transaction share an _lsn, so
  // the position includes the id: a batch may end inside such a group. With `max_lsn`,
  // the dimension's highest _lsn in the same snapshot.
  virtual Status ReadDimension(uint64_t after_lsn, const std::string& after_id, bool live_only,
                               size_t limit, const std::function<Status(const DimensionRow&)>& row,
                               uint64_t* max_lsn) = 0;
};

// The latest state of each key in raw.<table> (ARCHITECTURE.md: its row with the highest
// (_cdc_lsn, _cdc_seq), unless a later 't' row exists), deleted keys left out, as a
// PostgreSQL query selecting `columns` (an expression list over the alias `latest`)
// . With `before_lsn` (a pg_lsn literal), the state just before that position. The one
// definition of "latest state" that reconcile, resyncs and tests share; the transform
// project's staging model says the same in SQL of its own. Identifiers are quoted.
struct LatestStateQuery {
  std::string table = "clientes_clube";
  std::vector<std::string> key_columns = {"cliente_id"};
  std::string columns = "latest.*";
  std::string before_lsn;  // "": all of RAW
};
std::string LatestRawStateSql(const LatestStateQuery& query);

// RAW retention (raw.retention_days; LGPD art. 16): removes up to `batch` versions of
// raw.<table> that a newer version of the same key supersedes and that were committed
// more than `days` ago; the latest state of each key (a deletion's row included) always
// stays. One short transaction that takes no lock writers wait for, on the caller's
// connection (kept across rounds). Returns how many went.
pdv::Result<int64_t> PruneSupersededVersions(pg::Connection& warehouse, const std::string& table,
                                             int days, int batch);

// Connects to a PostgreSQL warehouse and creates what is missing there: four schemas
// (raw, staging, marts, platform), raw._cdc_checkpoint, platform's API keys and erasure
// register, and the leases' tables and fence (pg/lease.h); the dbt project's models and
// snapshots make the rest. Nothing is created when all of it exists.
pdv::Result<std::unique_ptr<Warehouse>> ConnectPostgresWarehouse(const std::string& url);

}  // namespace pdv::warehouse
