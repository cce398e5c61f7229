// The PostgreSQL warehouse: RAW tables, the CDC checkpoint, batches written with COPY.

#include <fmt/format.h>

#include <charconv>
#include <iterator>
#include <set>

#include "common/erasure.h"
#include "common/lsn.h"
#include "common/time_text.h"
#include "pg/connection.h"
#include "pg/copy_text.h"
#include "pg/lease.h"
#include "warehouse/warehouse.h"

namespace pdv::warehouse {
namespace {

// RAW table `table`'s column names, and ".index" if its key index exists; empty: no such
// table. DDL runs only for what is missing: ALTER TABLE takes an exclusive lock even when
// the column exists, so it would wait for every reader of RAW (a transform's open
// transaction, an analyst's query, a cut-off client's session) while everything after it
// queued behind it.
pdv::Result<std::set<std::string>> RawTableHas(pg::Connection& conn, const std::string& table) {
  auto present = conn.ExecParams(
      "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN "
      "pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'raw' AND c.relname = $1 AND "
      "a.attnum > 0 AND NOT a.attisdropped UNION ALL SELECT '.index' FROM pg_class i JOIN "
      "pg_namespace n ON n.oid = i.relnamespace WHERE n.nspname = 'raw' AND i.relname = $2",
      {table, table + "_key_lsn"});
  if (!present.ok()) return present.status();
  std::set<std::string> have;
  for (int i = 0; i < present->rows(); ++i) have.insert(present->str(i, 0));
  return have;
}

constexpr size_t kCopyBufferBytes = 256 * 1024;
// Rows a resync adds for deletions sort after the snapshot rows at the same LSN.
constexpr int64_t kDeletionSeqBase = 1'000'000'000'000;

// The position as stored: "X/Y" from a pg_lsn column.
uint64_t ParseLsnText(std::string_view text) { return ParseLsn(text).value_or(0); }

std::string TimestampUs(int64_t us) { return TimestampText(us) + "+00"; }

class PostgresBatch : public RawBatch {
 public:
  PostgresBatch(pg::Connection* conn, std::string table, std::string slot,
                std::vector<RawColumn> columns, std::string fence)
      : conn_(conn),
        table_(std::move(table)),
        slot_(std::move(slot)),
        columns_(std::move(columns)),
        fence_(std::move(fence)) {}

  ~PostgresBatch() override {
    if (!done_ && !conn_->broken()) {
      if (copying_) (void)conn_->CopyEnd();
      (void)conn_->Exec("ROLLBACK");
    }
  }

  Status Begin() { return conn_->Exec(std::string("BEGIN; ") + kSubjectWriteLockSql).status(); }

  Status Add(std::string_view fields, const RawChange& change) override {
    if (!copying_) {
      if (Status s = StartCopy(); !s.ok()) return s;
    }
    buffer_.append(fields);
    // A transaction's rows share LSN and commit time: format those once.
    if (change.lsn != last_lsn_ || change.committed_at_us != last_committed_us_ || rows_ == 0) {
      last_lsn_ = change.lsn;
      last_committed_us_ = change.committed_at_us;
      lsn_text_ = LsnText(change.lsn);
      committed_text_ = change.committed_at_us ? TimestampUs(*change.committed_at_us) : "\\N";
    }
    fmt::format_to(std::back_inserter(buffer_), "\t{}\t{}\t{}\t{}\t{}\n", lsn_text_, change.seq,
                   change.op, committed_text_, change.deleted ? committed_text_ : "\\N");
    ++rows_;
    if (buffer_.size() >= kCopyBufferBytes) return FlushBuffer();
    return Status::Ok();
  }

  Status AddDeletionsOfMissingKeys(const RawChange& change) override {
    return AddDeletions(change, nullptr);
  }
  Status AddDeletionsOfMissingKeysAmong(const RawChange& change,
                                        const std::vector<std::string>& keys) override {
    return AddDeletions(change, &keys);
  }

  // Deletions of the keys missing from the rows added at change.lsn; with `only`, of
  // those among `only` (the table's one key column).
  Status AddDeletions(const RawChange& change, const std::vector<std::string>* only) {
    if (Status s = EndCopy(); !s.ok()) return s;
    std::string keys, on;
    for (const auto& c : columns_) {
      if (!c.key) continue;
      std::string id = conn_->Identifier(c.name);
      keys += (keys.empty() ? "" : ", ") + id;
      on += fmt::format("{}s.{} = latest.{}", on.empty() ? "" : " AND ", id, id);
    }
    if (keys.empty()) return Status::Error("resync: the source table has no key columns");
    std::string among;
    if (only) {
      if (keys.find(',') != std::string::npos) {
        return Status::Error("reconcile: a table with a key of several columns is not supported");
      }
      std::string array = "{";
      for (const auto& k : *only) {
        std::string quoted;
        for (char c : k) {
          if (c == '"' || c == '\\') quoted += '\\';
          quoted += c;
        }
        array += (array.size() > 1 ? ",\"" : "\"") + quoted + "\"";
      }
      array += "}";
      among = fmt::format(" AND latest.{}::text = ANY ({}::text[])", keys, conn_->Literal(array));
    }
    std::string t = RawTable();
    std::string lsn = conn_->Literal(LsnText(change.lsn));
    std::string at =
        change.committed_at_us ? conn_->Literal(TimestampUs(*change.committed_at_us)) : "now()";
    std::vector<std::string> key_names;
    for (const auto& c : columns_) {
      if (c.key) key_names.push_back(c.name);
    }
    std::string latest = LatestRawStateSql(
        {.table = table_, .key_columns = key_names, .columns = keys, .before_lsn = lsn});
    auto r = conn_->Exec(fmt::format(
        "INSERT INTO {t} ({keys}, _cdc_lsn, _cdc_seq, _cdc_op, _cdc_committed_at, _cdc_deleted_at) "
        "SELECT {keys}, {lsn}, {base} + row_number() OVER (), 'd', {at}, {at} FROM ({latest}) "
        "latest WHERE NOT EXISTS (SELECT 1 FROM {seen} s WHERE s._cdc_lsn = {lsn} AND {on}){among}",
        fmt::arg("t", t), fmt::arg("seen", staged_ ? std::string("pdv_resync_rows") : t),
        fmt::arg("keys", keys), fmt::arg("lsn", lsn), fmt::arg("base", kDeletionSeqBase),
        fmt::arg("at", at), fmt::arg("on", on), fmt::arg("latest", latest),
        fmt::arg("among", among)));
    if (!r.ok()) return r.status();
    rows_ += static_cast<uint64_t>(r->affected());
    return Status::Ok();
  }

  Status StageSnapshotRows() override {
    if (Status s = EndCopy(); !s.ok()) return s;
    auto r = conn_->Exec(fmt::format(
        "CREATE TEMPORARY TABLE pdv_resync_rows (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP",
        RawTable()));
    if (!r.ok()) return r.status();
    staged_ = true;
    return Status::Ok();
  }

  pdv::Result<uint64_t> AppendChangedSnapshotRows(const RawChange& change) override {
    if (Status s = EndCopy(); !s.ok()) return s;
    if (!staged_) return Status::Error("resync: no staged snapshot rows");
    std::string on, columns, mine, theirs;
    std::vector<std::string> key_names;
    for (const auto& c : columns_) {
      std::string id = conn_->Identifier(c.name);
      columns += (columns.empty() ? "" : ", ") + id;
      mine += (mine.empty() ? "" : ", ") + ("s." + id);
      theirs += (theirs.empty() ? "" : ", ") + ("latest." + id);
      if (!c.key) continue;
      key_names.push_back(c.name);
      on += fmt::format(" AND s.{} = latest.{}", id, id);
    }
    std::string lsn = conn_->Literal(LsnText(change.lsn));
    std::string latest = LatestRawStateSql(
        {.table = table_, .key_columns = key_names, .columns = columns, .before_lsn = lsn});
    auto r = conn_->Exec(fmt::format(
        "INSERT INTO {t} SELECT s.* FROM pdv_resync_rows s WHERE NOT EXISTS (SELECT 1 FROM "
        "({latest}) latest WHERE true{on} AND ROW({mine}) IS NOT DISTINCT FROM ROW({theirs}))",
        fmt::arg("t", RawTable()), fmt::arg("latest", latest), fmt::arg("on", on),
        fmt::arg("mine", mine), fmt::arg("theirs", theirs)));
    if (!r.ok()) return r.status();
    auto staged = Scalar("SELECT count(*) FROM pdv_resync_rows");
    if (!staged.ok()) return staged.status();
    auto appended = static_cast<uint64_t>(r->affected());
    uint64_t total = std::stoull(*staged);
    // rows_ counted the staged rows: now it counts what RAW got.
    rows_ = rows_ - std::min(rows_, total) + appended;
    return total - std::min(total, appended);
  }

  pdv::Result<std::string> Scalar(const std::string& sql) {
    auto r = conn_->Exec(sql);
    if (!r.ok()) return r.status();
    return std::string(r->str(0, 0));
  }

  Status Commit(const Checkpoint& checkpoint, const std::string& channel) override {
    if (Status s = EndCopy(); !s.ok()) return s;
    // The fence, the checkpoint, the notification and COMMIT in one query: the server
    // runs them back to back, so no gap opens between the fencing check and the commit
    // (a holder cut off mid-batch either commits before a takeover or never).
    std::string sql = fence_.empty() ? "" : fence_ + "; ";
    sql += fmt::format(
        "INSERT INTO raw._cdc_checkpoint (slot, commit_lsn, flush_lsn, snapshot_done, updated_at, "
        "source_system_id, source_timeline) VALUES ({}, {}, {}, {}, now(), {}, {}) "
        "ON CONFLICT (slot) DO UPDATE SET commit_lsn = EXCLUDED.commit_lsn, "
        "flush_lsn = EXCLUDED.flush_lsn, snapshot_done = EXCLUDED.snapshot_done, "
        "updated_at = now(), source_system_id = EXCLUDED.source_system_id, "
        "source_timeline = EXCLUDED.source_timeline; ",
        conn_->Literal(slot_), conn_->Literal(LsnText(checkpoint.commit_lsn)),
        conn_->Literal(LsnText(checkpoint.flush_lsn)), checkpoint.snapshot_done ? "true" : "false",
        checkpoint.source_system_id.empty() ? "NULL" : conn_->Literal(checkpoint.source_system_id),
        checkpoint.source_timeline > 0 ? std::to_string(checkpoint.source_timeline) : "NULL");
    if (!channel.empty()) {
      sql += fmt::format("SELECT pg_notify({}, {}); ", conn_->Literal(channel),
                         conn_->Literal(LsnText(checkpoint.commit_lsn)));
    }
    auto c = conn_->Exec(sql + "COMMIT");
    if (!c.ok()) {
      // A failed statement leaves the transaction aborted: the destructor rolls back.
      if (pg::IsFenced(c.status())) {
        return Status::Error("warehouse: " + c.message(), pg::kLeaseLost);
      }
      return c.status();
    }
    done_ = true;
    if (std::string_view(PQcmdStatus(c->raw())) == "ROLLBACK") {
      return Status::Error("warehouse: COMMIT of a RAW batch was rolled back");
    }
    return Status::Ok();
  }

  uint64_t rows() const override { return rows_; }

  Status AddColumns(const std::vector<RawColumn>& columns) override {
    if (columns.empty()) return Status::Ok();
    if (Status s = EndCopy(); !s.ok()) return s;
    auto have = RawTableHas(*conn_, table_);
    if (!have.ok()) return have.status();
    std::string sql;
    for (const auto& c : columns) {
      if (!have->contains(c.name)) {
        sql += fmt::format("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {};", RawTable(),
                           conn_->Identifier(c.name), c.sql_type);
      }
      columns_.push_back(c);
    }
    if (sql.empty()) return Status::Ok();
    return conn_->Exec(sql).status();
  }

  pdv::Result<std::optional<std::string>> LatestValue(const std::vector<RawColumn>& key_columns,
                                                      const std::vector<std::string>& key,
                                                      const std::string& column) override {
    // The open COPY holds the connection: end it (its rows stay in this transaction, so
    // the query below sees them), then ask.
    if (Status s = EndCopy(); !s.ok()) return s;
    std::string where;
    std::vector<std::optional<std::string>> params;
    for (size_t i = 0; i < key_columns.size() && i < key.size(); ++i) {
      // Compared in the column's own type, so the (key, _cdc_lsn) index serves it.
      where += fmt::format("{}{} = ${}::{}", i ? " AND " : "",
                           conn_->Identifier(key_columns[i].name), i + 1, key_columns[i].sql_type);
      params.push_back(key[i]);
    }
    auto r = conn_->ExecParams(
        fmt::format("SELECT {}::text FROM {} WHERE {} AND _cdc_op IN ('r', 'c', 'u') "
                    "ORDER BY _cdc_lsn DESC, _cdc_seq DESC LIMIT 1",
                    conn_->Identifier(column), RawTable(), where),
        params);
    if (!r.ok()) return r.status();
    if (r->rows() == 0 || r->is_null(0, 0)) return std::optional<std::string>();
    return std::optional<std::string>(r->str(0, 0));
  }

 private:
  std::string RawTable() { return "raw." + conn_->Identifier(table_); }

  Status StartCopy() {
    std::string cols;
    for (const auto& c : columns_) cols += conn_->Identifier(c.name) + ", ";
    if (Status s = conn_->CopyBegin(fmt::format(
            "COPY {} ({}_cdc_lsn, _cdc_seq, _cdc_op, _cdc_committed_at, _cdc_deleted_at) "
            "FROM STDIN",
            staged_ ? std::string("pdv_resync_rows") : RawTable(), cols));
        !s.ok()) {
      return s;
    }
    copying_ = true;
    return Status::Ok();
  }
  Status FlushBuffer() {
    if (buffer_.empty()) return Status::Ok();
    Status s = conn_->CopyPut(buffer_);
    buffer_.clear();
    return s;
  }
  Status EndCopy() {
    if (!copying_) return Status::Ok();
    if (Status s = FlushBuffer(); !s.ok()) return s;
    copying_ = false;
    return conn_->CopyEnd();
  }

  pg::Connection* conn_;
  std::string table_, slot_;
  std::vector<RawColumn> columns_;
  std::string fence_;
  bool staged_ = false;  // StageSnapshotRows: Adds go to pdv_resync_rows
  std::string buffer_;
  uint64_t last_lsn_ = 0;
  std::optional<int64_t> last_committed_us_;
  std::string lsn_text_, committed_text_;
  bool copying_ = false;
  bool done_ = false;
  uint64_t rows_ = 0;
};

class PostgresWarehouse : public Warehouse {
 public:
  explicit PostgresWarehouse(pg::Connection conn) : conn_(std::move(conn)) {}

  Status Init() {
    // DDL only when something is missing: a stage's own role may not create schemas.
    auto present = conn_.Exec(
        "SELECT (SELECT count(*) FROM pg_namespace WHERE nspname IN ('raw', 'staging', 'marts', "
        "'platform')) = 4 AND (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = "
        "c.relnamespace WHERE (n.nspname, c.relname) IN (('raw', '_cdc_checkpoint'), "
        "('platform', 'api_keys'))) = 2 "
        "AND to_regclass('platform.erasure_register') IS NOT NULL "
        "AND EXISTS (SELECT FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN "
        "pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'raw' AND c.relname = "
        "'_cdc_checkpoint' AND a.attname = 'source_timeline')");
    if (!present.ok()) return present.status();
    if (present->get(0, 0) == "t") return pg::EnsureLeaseSchema(conn_);
    // Stages starting together on a new warehouse run this at once, and CREATE ... IF NOT
    // EXISTS races on the catalog's unique index: one at a time (a lock held to the end of
    // this one-transaction query).
    auto r = conn_.Exec(
        "SELECT pg_advisory_xact_lock(hashtext('pdv warehouse schema')); "
        "CREATE SCHEMA IF NOT EXISTS raw; CREATE SCHEMA IF NOT EXISTS staging; "
        "CREATE SCHEMA IF NOT EXISTS marts; "
        "CREATE TABLE IF NOT EXISTS raw._cdc_checkpoint (slot text PRIMARY KEY, "
        "commit_lsn pg_lsn NOT NULL, flush_lsn pg_lsn NOT NULL, snapshot_done boolean NOT NULL, "
        "updated_at timestamptz NOT NULL);"
        "ALTER TABLE raw._cdc_checkpoint ADD COLUMN IF NOT EXISTS source_system_id text, "
        "ADD COLUMN IF NOT EXISTS source_timeline integer;"
        "CREATE SCHEMA IF NOT EXISTS platform; "
        "CREATE TABLE IF NOT EXISTS platform.api_keys (hash text PRIMARY KEY, name text NOT NULL, "
        "created_at text NOT NULL, revoked boolean NOT NULL DEFAULT false, "
        "updated_at timestamptz NOT NULL DEFAULT now()); "
        // LGPD erasures (src/subject/): the requests with their receipts (times and counts
        // per layer), and the subjects they name, by HMAC only (common/erasure.h). No PII.
        "CREATE TABLE IF NOT EXISTS platform.erasure_requests (request_id uuid PRIMARY KEY, "
        "at_source boolean NOT NULL, requested_at timestamptz NOT NULL DEFAULT now(), "
        "completed_at timestamptz, receipt jsonb NOT NULL DEFAULT '{}'); "
        "CREATE TABLE IF NOT EXISTS platform.erasure_register (seq bigserial UNIQUE, "
        "request_id uuid NOT NULL REFERENCES platform.erasure_requests, kind text NOT NULL "
        "CHECK (kind IN ('cliente_id', 'cpf_hash', 'email')), hmac text NOT NULL, PRIMARY KEY "
        "(kind, hmac)); "
        "SELECT 1");
    if (!r.ok()) return r.status();
    // The leases' tables and fence: pg/lease.h owns them.
    return pg::EnsureLeaseSchema(conn_);
  }

  pdv::Result<ErasedIds> ErasedSince(int64_t after_seq) override {
    auto r = conn_.ExecParams(
        "SELECT seq, hmac FROM platform.erasure_register WHERE seq > $1::bigint AND kind = "
        "'cliente_id' ORDER BY seq",
        {std::to_string(after_seq)});
    if (!r.ok()) return r.status();
    ErasedIds out{.last_seq = after_seq};
    for (int i = 0; i < r->rows(); ++i) {
      out.last_seq = std::stoll(r->str(i, 0));
      out.cliente_id_hmacs.push_back(r->str(i, 1));
    }
    return out;
  }

  Status SaveApiKey(const ApiKeyRow& key) override {
    return conn_
        .ExecParams(
            "INSERT INTO platform.api_keys (hash, name, created_at, revoked) VALUES ($1, $2, $3, "
            "$4::boolean) ON CONFLICT (hash) DO UPDATE SET name = EXCLUDED.name, revoked = "
            "EXCLUDED.revoked, updated_at = now()",
            {key.hash, key.name, key.created_at, key.revoked ? "true" : "false"})
        .status();
  }

  pdv::Result<std::vector<ApiKeyRow>> ApiKeys() override {
    auto r = conn_.Exec(
        "SELECT hash, name, created_at, revoked FROM platform.api_keys ORDER BY created_at, hash");
    if (!r.ok()) return r.status();
    std::vector<ApiKeyRow> out;
    for (int i = 0; i < r->rows(); ++i) {
      out.push_back({r->str(i, 0), r->str(i, 1), r->str(i, 2), r->get(i, 3) == "t"});
    }
    return out;
  }

  Status EnsureRawTable(const std::string& table, const std::vector<RawColumn>& columns,
                        KeyIndex key_index) override {
    std::string t = "raw." + conn_.Identifier(table);
    std::string cols, keys;
    for (const auto& c : columns) {
      cols += fmt::format("{} {}, ", conn_.Identifier(c.name), c.sql_type);
      if (c.key) keys += conn_.Identifier(c.name) + ", ";
    }
    std::string sql = fmt::format(
        "CREATE TABLE IF NOT EXISTS {t} ({cols}_cdc_lsn pg_lsn NOT NULL, _cdc_seq bigint NOT NULL, "
        "_cdc_op char(1) NOT NULL CHECK (_cdc_op IN ('r', 'c', 'u', 'd', 't')), "
        "_cdc_committed_at timestamptz, _cdc_deleted_at timestamptz, "
        "_loaded_at timestamptz NOT NULL DEFAULT now(), "
        "UNIQUE (_cdc_lsn, _cdc_seq));",
        fmt::arg("t", t), fmt::arg("cols", cols));
    // Only what is missing (RawTableHas).
    auto have = RawTableHas(conn_, table);
    if (!have.ok()) return have.status();
    if (!have->empty()) sql.clear();  // the table exists
    for (const auto& c : columns) {
      if (have->contains(c.name)) continue;
      sql += fmt::format("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {};", t,
                         conn_.Identifier(c.name), c.sql_type);
    }
    if (!keys.empty() && !have->contains(".index") && key_index == KeyIndex::kNow) {
      sql += fmt::format("CREATE INDEX IF NOT EXISTS {} ON {} ({}_cdc_lsn);",
                         conn_.Identifier(table + "_key_lsn"), t, keys);
    }
    if (sql.empty()) return Status::Ok();
    return conn_.Exec(sql).status();
  }

  pdv::Result<std::vector<std::string>> RawKeysFrom(const std::string& table,
                                                    const std::string& key_column,
                                                    uint64_t from_lsn) override {
    auto r = conn_.Exec(fmt::format("SELECT DISTINCT {}::text FROM raw.{} WHERE _cdc_lsn >= {}",
                                    conn_.Identifier(key_column), conn_.Identifier(table),
                                    conn_.Literal(LsnText(from_lsn))));
    if (!r.ok()) return r.status();
    std::vector<std::string> keys;
    for (int i = 0; i < r->rows(); ++i) keys.push_back(r->str(i, 0));
    return keys;
  }

  pdv::Result<std::optional<Checkpoint>> ReadCheckpoint(const std::string& slot) override {
    auto r = conn_.Exec(
        fmt::format("SELECT commit_lsn, flush_lsn, snapshot_done, coalesce(source_system_id, ''), "
                    "coalesce(source_timeline, 0) FROM raw._cdc_checkpoint WHERE slot = {}",
                    conn_.Literal(slot)));
    if (!r.ok()) return r.status();
    if (r->rows() == 0) return std::optional<Checkpoint>();
    return std::optional<Checkpoint>(
        Checkpoint{.commit_lsn = ParseLsnText(r->get(0, 0)),
                   .flush_lsn = ParseLsnText(r->get(0, 1)),
                   .snapshot_done = r->get(0, 2) == "t",
                   .source_system_id = r->str(0, 3),
                   .source_timeline = static_cast<int>(std::stol(r->str(0, 4)))});
  }

  void SetFence(std::string sql) override { fence_ = std::move(sql); }

  pdv::Result<std::unique_ptr<RawBatch>> BeginBatch(
      const std::string& table, const std::string& slot,
      const std::vector<RawColumn>& columns) override {
    auto batch = std::make_unique<PostgresBatch>(&conn_, table, slot, columns, fence_);
    if (Status s = batch->Begin(); !s.ok()) return s;
    return std::unique_ptr<RawBatch>(std::move(batch));
  }

  pdv::Result<uint64_t> CountDimension() override {
    auto r = conn_.Exec("SELECT count(*) FROM marts.dim_clientes_clube WHERE NOT _deleted");
    if (!r.ok()) return r.status();
    return static_cast<uint64_t>(std::stoull(r->str(0, 0)));
  }

  Status ReadDimension(uint64_t after_lsn, const std::string& after_id, bool live_only,
                       size_t limit, const std::function<Status(const DimensionRow&)>& row,
                       uint64_t* max_lsn) override {
    auto txn = pg::Transaction::Begin(conn_, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (!txn.ok()) return txn.status();
    if (max_lsn) {
      auto m = conn_.Exec("SELECT coalesce(max(_lsn), '0/0') FROM marts.dim_clientes_clube");
      if (!m.ok()) return m.status();
      *max_lsn = ParseLsnText(m->get(0, 0));
    }
    std::string sql =
        "SELECT cliente_id::text, cpf_hash, primeiro_nome, status_clube, opt_in_marketing, "
        "round(ticket_medio_estimado * 100)::bigint, origem_campanha, "
        "extract(epoch FROM elegivel_a_partir_de)::bigint, "
        "extract(epoch FROM atualizado_em)::bigint, _lsn, _deleted "
        "FROM marts.dim_clientes_clube d ";
    if (after_lsn == 0 && after_id.empty() && limit == 0) {
      // All of it: in the table's order, one sequential read (in position order, an index
      // scan fetched the rows in random order, slow once the table outgrows memory).
      sql += live_only ? "WHERE NOT _deleted" : "";
    } else {
      sql += fmt::format(
          // Ordered by the uuid column, qualified: a bare `cliente_id` would name the text
          // output column, and sorting every row that shares an _lsn (a snapshot's
          // million) by text for each batch made a sync quadratic.
          "WHERE (d._lsn, d.cliente_id) > ({}, {}::uuid) {} ORDER BY d._lsn, d.cliente_id{}",
          conn_.Literal(LsnText(after_lsn)),
          // No id: past every customer at after_lsn.
          conn_.Literal(after_id.empty() ? "ffffffff-ffff-ffff-ffff-ffffffffffff" : after_id),
          live_only ? "AND NOT _deleted" : "", limit ? fmt::format(" LIMIT {}", limit) : "");
    }
    // Streamed through COPY: the server keeps sending while this side decodes and the
    // caller works, where FETCH round trips left each side idle in turn (a full load was
    // bound by them).
    pg::CopyTextLine line;
    auto number = [&](size_t i) -> int64_t {
      int64_t v = 0;
      std::string_view t = line.get(i);
      std::from_chars(t.data(), t.data() + t.size(), v);
      return v;
    };
    Status read =
        conn_.CopyOut("COPY (" + sql + ") TO STDOUT", [&](std::string_view text) -> Status {
          if (Status s = line.Parse(text); !s.ok()) return s;
          if (line.size() != 11) {
            return Status::Error(
                fmt::format("dimension read: {} columns, 11 expected", line.size()));
          }
          DimensionRow d;
          d.cliente_id = line.get(0);
          d.cpf_hash = line.get(1);
          d.primeiro_nome = line.get(2);
          d.status_clube = line.get(3);
          d.opt_in_marketing = line.get(4) == "t";
          d.ticket_centavos = line.is_null(5) ? 0 : number(5);
          d.origem_campanha = line.get(6);
          if (!line.is_null(7)) d.elegivel_a_partir_de = number(7);
          d.atualizado_em = line.is_null(8) ? 0 : number(8);
          d.lsn = ParseLsnText(line.get(9));
          d.deleted = line.get(10) == "t";
          return row(d);
        });
    if (!read.ok()) return read;
    return txn->Commit();
  }

 private:
  pg::Connection conn_;
  std::string fence_;  // SetFence
};

}  // namespace

std::string LatestRawStateSql(const LatestStateQuery& q) {
  auto quote = pg::QuoteIdentifier;
  std::string t = "raw." + quote(q.table), keys;
  for (const auto& k : q.key_columns) keys += (keys.empty() ? "" : ", ") + quote(k);
  std::string before = q.before_lsn.empty() ? "" : " AND _cdc_lsn < " + q.before_lsn;
  return fmt::format(
      "SELECT {cols} FROM (SELECT DISTINCT ON ({keys}) * FROM {t} WHERE _cdc_op <> 't'{before} "
      "AND _cdc_lsn > coalesce((SELECT max(_cdc_lsn) FROM {t} WHERE _cdc_op = 't'{before}), "
      "'0/0') ORDER BY {keys}, _cdc_lsn DESC, _cdc_seq DESC) latest WHERE latest._cdc_op <> 'd'",
      fmt::arg("cols", q.columns), fmt::arg("keys", keys), fmt::arg("t", t),
      fmt::arg("before", before));
}

pdv::Result<int64_t> PruneSupersededVersions(pg::Connection& conn, const std::string& table,
                                             int days, int batch) {
  std::string t = "raw." + conn.Identifier(table);
  // The newer version is found through the (cliente_id, _cdc_lsn) index; keyless rows
  // (truncations) are never candidates.
  auto r = conn.ExecParams(
      fmt::format("DELETE FROM {t} WHERE ctid = ANY(ARRAY(SELECT o.ctid FROM {t} o WHERE "
                  "o.cliente_id IS NOT NULL AND coalesce(o._cdc_committed_at, o._loaded_at) < "
                  "now() - make_interval(days => $1::int) AND EXISTS (SELECT 1 FROM {t} n WHERE "
                  "n.cliente_id = o.cliente_id AND (n._cdc_lsn, n._cdc_seq) > (o._cdc_lsn, "
                  "o._cdc_seq)) LIMIT $2::int))",
                  fmt::arg("t", t)),
      {std::to_string(days), std::to_string(batch)});
  if (!r.ok()) return r.status();
  return r->affected();
}

pdv::Result<std::unique_ptr<Warehouse>> ConnectPostgresWarehouse(const std::string& url) {
  auto conn = pg::Connection::Connect(url);
  if (!conn.ok()) return conn.status();
  auto wh = std::make_unique<PostgresWarehouse>(std::move(*conn));
  if (Status s = wh->Init(); !s.ok()) return s;
  return std::unique_ptr<Warehouse>(std::move(wh));
}

}  // namespace pdv::warehouse
