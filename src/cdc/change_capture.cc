// The cdc stage: snapshot, stream, batch, checkpoint. See cdc.h.

#include <fmt/format.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cdc/cdc.h"
#include "cdc/change.h"
#include "cdc/change_buffer.h"
#include "cdc/pgoutput.h"
#include "cdc/replication_connection.h"
#include "common/backoff.h"
#include "common/erasure.h"
#include "common/host_port.h"
#include "common/progress.h"
#include "common/time_text.h"
#include "metrics/http_exporter.h"
#include "metrics/registry.h"
#include "pg/connection.h"
#include "pg/lease.h"
#include "pg/lease_runner.h"
#include "pg/reconnect.h"
#include "warehouse/warehouse.h"

namespace pdv::cdc {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using warehouse::Checkpoint;
using warehouse::RawChange;
using warehouse::RawColumn;

int64_t NowUnixUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// COPY text escaping of one field.
void AppendCopyField(std::string* out, std::string_view v) {
  // Runs without a special character are appended whole.
  while (!v.empty()) {
    size_t plain = v.find_first_of("\\\t\n\r");
    out->append(v.substr(0, plain));
    if (plain == std::string_view::npos) return;
    switch (v[plain]) {
      case '\\':
        *out += "\\\\";
        break;
      case '\t':
        *out += "\\t";
        break;
      case '\n':
        *out += "\\n";
        break;
      default:
        *out += "\\r";
    }
    v.remove_prefix(plain + 1);
  }
}

// Rows shorter than this (as COPY text) are not kept for carrying TOASTed values: see
// Session::RememberRow.
constexpr size_t kRememberedRowMinBytes = 1024;

// What `pdv cdc` exposes on its metrics port.
struct Metrics {
  explicit Metrics(metrics::Registry& r)
      : checkpoint_lsn(r.AddGauge("pdv_cdc_checkpoint_lsn",
                                  "WAL position of the last source commit made durable in RAW")),
        wal_end_lsn(r.AddGauge("pdv_cdc_source_wal_end_lsn",
                               "the source's end of WAL, as last reported by it")),
        lag_bytes(r.AddGauge("pdv_cdc_lag_bytes", "source WAL not yet acknowledged, in bytes")),
        lag_seconds(r.AddGauge("pdv_cdc_lag_seconds",
                               "age of the oldest source commit received but not yet in RAW")),
        rows_per_second(r.AddGauge("pdv_cdc_rows_per_second", "RAW rows per second, last 10 s")),
        rows(r.AddCounter("pdv_cdc_rows_total", "rows appended to RAW")),
        batches(r.AddCounter("pdv_cdc_batches_total", "RAW batches committed")),
        reconnects(r.AddCounter("pdv_cdc_reconnects_total", "sessions restarted after a failure")),
        batch_rows(r.AddHistogram("pdv_cdc_batch_rows", "rows per RAW batch",
                                  {1, 10, 100, 1000, 10000, 100000})),
        commit_to_raw(r.AddHistogram("pdv_cdc_commit_to_raw_seconds",
                                     "from the source commit to its RAW commit",
                                     {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10})) {}
  metrics::Gauge *checkpoint_lsn, *wal_end_lsn, *lag_bytes, *lag_seconds, *rows_per_second, *rows,
      *batches, *reconnects;
  metrics::Histogram *batch_rows, *commit_to_raw;
};

// Errors a new session can get past: lost connections, and a slot still held by the
// walsender of a killed predecessor.
bool Retryable(const Status& s) { return pg::IsConnectionLost(s) || s.code() == "55006"; }

class Session {
 public:
  Session(const CdcOptions& options, Logger& log, Metrics& metrics, bool resync, pg::Lease& lease)
      : options_(options), log_(log), metrics_(metrics), resync_(resync), lease_(lease) {}

  // Ok when stopped or (once) caught up; otherwise why the session ended.
  Status Run(std::stop_token stop) {
    if (Status s = Connect(); !s.ok()) return s;
    if (Status s = PrepareSlot(stop); !s.ok()) return s;
    if (stop.stop_requested()) return Status::Ok();
    if (options_.once) {
      auto r = source_->Exec("SELECT pg_current_wal_lsn()");
      if (!r.ok()) return r.status();
      target_lsn_ = ParseLsn(r->get(0, 0)).value_or(0);
    }
    if (Status s = TakeSlotFromFormerHolder(stop); !s.ok()) return s;
    if (Status s = repl_->Start(options_.slot, checkpoint_.flush_lsn, options_.publication,
                                options_.streaming);
        !s.ok()) {
      return s;
    }
    started_ = true;
    log_.Info("cdc_streaming", {{"slot", options_.slot},
                                {"from_lsn", LsnText(checkpoint_.flush_lsn)},
                                {"once_target_lsn", LsnText(target_lsn_)}});
    return Stream(stop);
  }

  bool resynced() const { return resynced_; }
  // Got as far as streaming: the servers were reachable.
  bool started() const { return started_; }

 private:
  Status Connect() {
    auto source = pg::Connection::Connect(options_.oltp_url);
    if (!source.ok()) return source.status();
    source_.emplace(std::move(*source));
    auto wh = warehouse::ConnectPostgresWarehouse(options_.warehouse_url);
    if (!wh.ok()) return wh.status();
    wh_ = std::move(*wh);
    wh_->SetFence(lease_.FenceSql());
    std::string work_mem = options_.decoding_work_mem.empty()
                               ? ""
                               : "-c logical_decoding_work_mem=" + options_.decoding_work_mem;
    // The walsender gives up on a client it cannot reach within a lease TTL (unacknowledged
    // data, or no keepalive answer): a cut-off former holder's walsender then frees the
    // slot by itself, and one ended by a new holder does not linger trying to send to it.
    int ttl_ms = static_cast<int>(options_.lease_ttl.count());
    work_mem += fmt::format(
        "{}-c tcp_user_timeout={} -c tcp_keepalives_idle={} -c tcp_keepalives_interval=1 "
        "-c tcp_keepalives_count=2",
        work_mem.empty() ? "" : " ", ttl_ms, std::max(1, ttl_ms / 2000));
    auto repl = ReplicationConnection::Connect(options_.oltp_url, work_mem);
    if (!repl.ok()) return repl.status();
    repl_.emplace(std::move(*repl));
    auto identity = repl_->IdentifySystem();
    if (!identity.ok()) return identity.status();
    identity_ = *identity;
    return Status::Ok();
  }

  // A checkpoint to commit, with the source it was streamed from.
  Checkpoint FromThisSource(Checkpoint c) const {
    c.source_system_id = identity_.system_id;
    c.source_timeline = identity_.timeline;
    return c;
  }

  // Why the slot is gone, from the source RAW was streamed from (the checkpoint's) and
  // the one reached now: a failover (same system, newer timeline), another database
  // cluster (another system identifier: a wrong URL, or a restore), or a slot dropped
  // on the same server.
  enum class SlotLoss { kFailover, kOtherSystem, kDropped, kUnknown };
  SlotLoss WhySlotIsGone(const Checkpoint& c) const {
    if (c.source_system_id.empty()) return SlotLoss::kUnknown;
    if (c.source_system_id != identity_.system_id) return SlotLoss::kOtherSystem;
    if (identity_.timeline > c.source_timeline) return SlotLoss::kFailover;
    return SlotLoss::kDropped;
  }
  std::string SlotLossText(const Checkpoint& c) const {
    switch (WhySlotIsGone(c)) {
      case SlotLoss::kFailover:
        return fmt::format("the source failed over (timeline {} -> {}, system {})",
                           c.source_timeline, identity_.timeline, identity_.system_id);
      case SlotLoss::kOtherSystem:
        return fmt::format(
            "the source is another database cluster (system identifier {}; RAW was streamed "
            "from {})",
            identity_.system_id, c.source_system_id);
      case SlotLoss::kDropped:
        return fmt::format("the slot was dropped on the same source (system {}, timeline {})",
                           identity_.system_id, identity_.timeline);
      case SlotLoss::kUnknown:
        break;
    }
    return "the slot is missing on the source (a failover, or dropped by an operator?)";
  }

  // This instance holds the lease: a walsender still streaming our slot belongs to a
  // former holder (killed, or cut off and not yet timed out). End it, so that the slot is
  // ours now rather than after wal_sender_timeout; its writes are fenced anyway. The
  // stage's role may end its own role's backends.
  Status TakeSlotFromFormerHolder(std::stop_token stop) {
    std::string slot = source_->Literal(options_.slot);
    auto ended = source_->Exec(fmt::format(
        "SELECT active_pid, pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE "
        "slot_name = {} AND active_pid IS NOT NULL",
        slot));
    if (!ended.ok()) return ended.status();
    if (ended->rows() == 0) return Status::Ok();
    log_.Warn("cdc_slot_taken_over", {{"slot", options_.slot}, {"former_pid", ended->str(0, 0)}});
    for (int i = 0; i < 250 && !stop.stop_requested(); ++i) {
      auto active = source_->Exec(fmt::format(
          "SELECT 1 FROM pg_replication_slots WHERE slot_name = {} AND active_pid IS NOT NULL",
          slot));
      if (!active.ok()) return active.status();
      if (active->rows() == 0) return Status::Ok();
      pg::SleepFor(milliseconds(20), stop);
    }
    return Status::Ok();  // Start says what is wrong if it still is
  }

  // The publication first, then the slot: a change decoded between the two would
  // break the slot (PLATFORM-NOTES.md).
  Status EnsurePublication() {
    auto pub = source_->Exec(fmt::format("SELECT 1 FROM pg_publication WHERE pubname = {}",
                                         source_->Literal(options_.publication)));
    if (!pub.ok()) return pub.status();
    if (pub->rows() == 1) return Status::Ok();
    auto created = source_->Exec(fmt::format(
        "CREATE PUBLICATION {} FOR TABLE {}.{}", source_->Identifier(options_.publication),
        source_->Identifier(options_.schema), source_->Identifier(options_.table)));
    if (!created.ok()) return created.status();
    log_.Info("cdc_publication_created", {{"publication", options_.publication}});
    return Status::Ok();
  }

  Status DropSlot() {
    auto r = source_->Exec(
        fmt::format("SELECT pg_drop_replication_slot({})", source_->Literal(options_.slot)));
    return r.status();
  }

  Status PrepareSlot(std::stop_token stop) {
    auto checkpoint = wh_->ReadCheckpoint(options_.slot);
    if (!checkpoint.ok()) return checkpoint.status();
    // RAW came from another database cluster: stop before anything is made on this one.
    // Only an explicit --resync takes this source's snapshot (and marks deleted whatever
    // it lacks).
    if (!resync_ && checkpoint->has_value() &&
        WhySlotIsGone(**checkpoint) == SlotLoss::kOtherSystem) {
      return Status::Error(fmt::format(
          "{}: RAW's position (LSN {}) means nothing there, and --auto-resync does not resync "
          "from another database cluster: check oltp_url. If this source is meant, run `pdv "
          "cdc --resync` to take its snapshot (RAW then gets the current state of every row, "
          "and every customer it lacks is marked deleted)",
          SlotLossText(**checkpoint), LsnText((*checkpoint)->flush_lsn)));
    }
    if (Status s = EnsurePublication(); !s.ok()) return s;
    auto slot = source_->Exec(fmt::format("SELECT 1 FROM pg_replication_slots WHERE slot_name = {}",
                                          source_->Literal(options_.slot)));
    if (!slot.ok()) return slot.status();
    bool slot_exists = slot->rows() == 1;
    bool with_deletions = false;

    if (resync_) {
      if (slot_exists) {
        if (Status s = DropSlot(); !s.ok()) return s;
      }
      with_deletions = checkpoint->has_value();
      log_.Warn("cdc_resync", {{"slot", options_.slot}, {"slot_existed", slot_exists}});
    } else if (!slot_exists && options_.auto_resync && checkpoint->has_value() &&
               (*checkpoint)->snapshot_done) {
      // The source lost our slot: most often a failover to a standby (PostgreSQL 15 has no
      // failover slots). Opted in: a new slot and snapshot, reconciled with RAW.
      with_deletions = true;
      resync_ = true;
      log_.Warn("cdc_auto_resync", {{"slot", options_.slot},
                                    {"reason", SlotLossText(**checkpoint)},
                                    {"streamed_to_lsn", LsnText((*checkpoint)->flush_lsn)},
                                    {"from_timeline", (*checkpoint)->source_timeline},
                                    {"source_system_id", identity_.system_id},
                                    {"source_timeline", identity_.timeline}});
    } else if (!slot_exists) {
      if (checkpoint->has_value() && (*checkpoint)->snapshot_done) {
        return Status::Error(fmt::format(
            "replication slot {} does not exist on the source: {}. Changes after LSN {} can no "
            "longer be streamed. Run `pdv cdc --resync` to take a new snapshot (RAW then gets "
            "the current state of every row, deletions included)",
            options_.slot, SlotLossText(**checkpoint), LsnText((*checkpoint)->flush_lsn)));
      }
    } else if (!checkpoint->has_value() || !(*checkpoint)->snapshot_done) {
      // A snapshot was interrupted: its transaction rolled back, and its exported
      // snapshot died with its connection. Start over.
      log_.Warn("cdc_snapshot_restart", {{"slot", options_.slot}});
      if (Status s = DropSlot(); !s.ok()) return s;
    } else {
      checkpoint_ = **checkpoint;
      return Status::Ok();
    }
    return Snapshot(with_deletions, stop);
  }

  pdv::Result<std::string> SqlType(uint32_t oid, int32_t typmod) {
    auto key = std::make_pair(oid, typmod);
    if (auto it = types_.find(key); it != types_.end()) return it->second;
    auto r = source_->Exec(fmt::format("SELECT format_type({}, {})", oid,
                                       typmod < 0 ? "NULL" : std::to_string(typmod)));
    if (!r.ok()) return r.status();
    return types_[key] = r->str(0, 0);
  }

  Status Snapshot(bool with_deletions, std::stop_token stop) {
    auto created = repl_->CreateSlot(options_.slot);
    if (!created.ok()) return created.status();
    log_.Info("cdc_slot_created",
              {{"slot", options_.slot}, {"consistent_point", LsnText(created->consistent_point)}});
    auto conn = pg::Connection::Connect(options_.oltp_url);
    if (!conn.ok()) return conn.status();
    // Reading in the exported snapshot takes no lock that blocks writers.
    if (auto r = conn->Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); !r.ok()) {
      return r.status();
    }
    if (auto r = conn->Exec("SET TRANSACTION SNAPSHOT " + conn->Literal(created->snapshot_name));
        !r.ok()) {
      // The exported snapshot lives as long as the replication connection that made it:
      // this fails when that connection was just lost (a killed walsender, a restart).
      // A new session drops the slot of the unfinished snapshot and starts over.
      return Status::Error(
          fmt::format("snapshot export lost with the replication connection: {}", r.message()),
          pg::kConnectionLost);
    }
    std::string qualified =
        conn->Identifier(options_.schema) + "." + conn->Identifier(options_.table);
    auto cols = conn->Exec(fmt::format(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
        "coalesce(a.attnum = ANY (i.indkey), false) "
        "FROM pg_attribute a LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary "
        "WHERE a.attrelid = {}::regclass AND a.attnum > 0 AND NOT a.attisdropped "
        "AND a.attgenerated = '' ORDER BY a.attnum",
        conn->Literal(qualified)));
    if (!cols.ok()) return cols.status();
    raw_columns_.clear();
    std::string select;
    for (int i = 0; i < cols->rows(); ++i) {
      raw_columns_.push_back({cols->str(i, 0), cols->str(i, 1), cols->get(i, 2) == "t"});
      select += (i ? ", " : "") + conn->Identifier(cols->str(i, 0));
    }
    // A first snapshot builds RAW's key index after its rows are in (a resync appends to
    // a RAW that has it).
    if (Status s = wh_->EnsureRawTable(options_.table, raw_columns_,
                                       with_deletions ? warehouse::Warehouse::KeyIndex::kNow
                                                      : warehouse::Warehouse::KeyIndex::kLater);
        !s.ok()) {
      return s;
    }
    auto count = conn->Exec("SELECT count(*) FROM " + qualified);
    if (!count.ok()) return count.status();
    uint64_t total = std::stoull(count->str(0, 0));

    auto batch = wh_->BeginBatch(options_.table, options_.slot, raw_columns_);
    if (!batch.ok()) return batch.status();
    if (Status s = RefreshErased(); !s.ok()) return s;
    int subject_field = -1;  // cliente_id's position in a snapshot line
    for (size_t i = 0; i < raw_columns_.size(); ++i) {
      if (raw_columns_[i].name == kSubjectColumn) subject_field = static_cast<int>(i);
    }
    uint64_t erased_left_out = 0;
    // A resync stages the snapshot and appends only what differs from RAW.
    if (with_deletions) {
      if (Status s = (*batch)->StageSnapshotRows(); !s.ok()) return s;
    }
    std::optional<Progress> progress;
    if (options_.progress) progress.emplace(options_.progress, "cdc_snapshot", total);
    RawChange change{.lsn = created->consistent_point, .op = 'r', .committed_at_us = NowUnixUs()};
    int64_t seq = 0;
    Status copied =
        conn->CopyOut(fmt::format("COPY (SELECT {} FROM {}) TO STDOUT", select, qualified),
                      [&](std::string_view line) -> Status {
                        if (stop.stop_requested())
                          return Status::Error("stopped during the snapshot");
                        if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
                        change.seq = seq++;
                        if ((seq & 1023) == 0) {
                          if (progress) progress->Update(static_cast<uint64_t>(seq));
                          if (Status kept = lease_.Keep(); !kept.ok()) return kept;
                        }
                        if (subject_field >= 0 && IsErased(Field(line, subject_field))) {
                          ++erased_left_out;
                          return Status::Ok();
                        }
                        return (*batch)->Add(line, change);
                      });
    if (!copied.ok()) return copied;
    uint64_t deletions = 0, unchanged = 0;
    if (with_deletions) {
      if (Status s = (*batch)->AddDeletionsOfMissingKeys({.lsn = created->consistent_point,
                                                          .op = 'd',
                                                          .committed_at_us = NowUnixUs(),
                                                          .deleted = true});
          !s.ok()) {
        return s;
      }
      deletions = (*batch)->rows() - static_cast<uint64_t>(seq);
      // A resync appends only what differs from RAW: no change twice.
      auto left_out = (*batch)->AppendChangedSnapshotRows({.lsn = created->consistent_point});
      if (!left_out.ok()) return left_out.status();
      unchanged = *left_out;
    }
    Checkpoint done{.commit_lsn = created->consistent_point,
                    .flush_lsn = created->consistent_point,
                    .snapshot_done = true};
    uint64_t rows = (*batch)->rows();
    done = FromThisSource(done);
    if (Status s = (*batch)->Commit(done, kRawChannel); !s.ok()) return s;
    if (progress) progress->Finish(static_cast<uint64_t>(seq));
    (void)conn->Exec("COMMIT");
    checkpoint_ = done;
    resynced_ = true;
    // RAW's key index, if the snapshot left it for now (a process stopped before this
    // point builds it at its next start, here or on its first change).
    auto indexing = std::chrono::steady_clock::now();
    if (Status s =
            wh_->EnsureRawTable(options_.table, raw_columns_, warehouse::Warehouse::KeyIndex::kNow);
        !s.ok()) {
      return s;
    }
    raw_ready_ = true;
    double index_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - indexing).count();
    log_.Info("cdc_snapshot_done", {{"rows", static_cast<uint64_t>(seq) - erased_left_out},
                                    {"deletions", deletions},
                                    {"unchanged_not_appended", unchanged},
                                    {"appended", rows},
                                    {"lsn", LsnText(done.commit_lsn)},
                                    {"erased_left_out", erased_left_out},
                                    {"raw_index_s", index_s}});
    return Status::Ok();
  }

  // ---- streaming ----

  Status Stream(std::stop_token stop) {
    auto last_status = Clock::now();
    auto last_report = Clock::now();
    auto last_ping = Clock::time_point();
    uint64_t reported_rows = 0;
    while (true) {
      bool idle = !batch_ && !open_ && streamed_.empty();
      if (stop.stop_requested()) {
        if (!open_ && streamed_.empty()) {
          if (Status s = FlushBatch(); !s.ok()) return s;
        }
        return Status::Ok();
      }
      if (options_.once && idle && std::max(checkpoint_.flush_lsn, wal_end_seen_) >= target_lsn_) {
        log_.Info("cdc_caught_up",
                  {{"lsn", LsnText(checkpoint_.commit_lsn)}, {"rows", rows_written_}});
        return Status::Ok();
      }
      std::chrono::microseconds wait = milliseconds(1000);
      auto now = Clock::now();
      if (batch_ && !open_) {  // inside a transaction the batch cannot close: just read
        auto due =
            std::min(last_message_ + options_.flush_idle, batch_started_ + options_.max_batch_age);
        wait = std::max(std::chrono::microseconds(0),
                        std::chrono::ceil<std::chrono::microseconds>(due - now));
      } else if (options_.once) {
        wait = milliseconds(50);
      }
      auto received = repl_->Receive(wait);
      if (!received.ok()) return received.status();
      if (Status kept = lease_.Keep(); !kept.ok()) return kept;
      now = Clock::now();
      if (*received) {
        last_message_ = now;
        if (Status s = Handle(**received); !s.ok()) return s;
      }
      // Never inside a transaction: its rows are going into the batch as they arrive.
      if (batch_ && !open_ &&
          (now - last_message_ >= options_.flush_idle ||
           now - batch_started_ >= options_.max_batch_age)) {
        if (Status s = FlushBatch(); !s.ok()) return s;
      }
      idle = !batch_ && !open_ && streamed_.empty();
      // Nothing is pending: everything the server has sent is applied or irrelevant,
      // so the slot may release WAL up to its end.
      if (idle && wal_end_seen_ > reported_flush_) {
        if (Status s = SendStatus(wal_end_seen_, false); !s.ok()) return s;
      }
      // When idle, ask for a keepalive (every 100 ms with --once, every second otherwise):
      // it says where the server's WAL ends, so the slot follows it even when the WAL
      // holds nothing we publish. Busy, a plain status every 10 s keeps the walsender's
      // timeout away.
      auto ping_every = options_.once ? milliseconds(100) : milliseconds(1000);
      if ((idle && now - last_ping >= ping_every) ||
          now - last_status >= std::chrono::seconds(10)) {
        if (Status s = SendStatus(reported_flush_, idle); !s.ok()) return s;
        last_status = now;
        if (idle) last_ping = now;
      }
      if (now - last_report >= std::chrono::seconds(10)) {
        double secs = std::chrono::duration<double>(now - last_report).count();
        UpdateLagMetrics();
        metrics_.rows_per_second->Set((rows_written_ - reported_rows) / secs);
        log_.Info(
            "cdc_progress",
            {{"lsn", LsnText(checkpoint_.commit_lsn)},
             {"lag_bytes", metrics_.lag_bytes->Get()},
             {"lag_s", metrics_.lag_seconds->Get()},
             {"rows_per_s", metrics_.rows_per_second->Get()},
             {"rows", rows_written_},
             {"batches", batches_},
             {"avg_batch_rows", batches_ ? static_cast<double>(rows_written_) / batches_ : 0.0}});
        last_report = now;
        reported_rows = rows_written_;
      }
    }
  }

  void UpdateLagMetrics() {
    metrics_.checkpoint_lsn->Set(static_cast<double>(checkpoint_.commit_lsn));
    metrics_.wal_end_lsn->Set(static_cast<double>(wal_end_seen_));
    Lsn acknowledged = std::max(checkpoint_.flush_lsn, reported_flush_);
    metrics_.lag_bytes->Set(
        wal_end_seen_ > acknowledged ? static_cast<double>(wal_end_seen_ - acknowledged) : 0.0);
    metrics_.lag_seconds->Set(batch_commit_times_.empty()
                                  ? 0.0
                                  : static_cast<double>(NowUnixUs() - batch_commit_times_.front()) /
                                        1e6);
  }

  Status SendStatus(Lsn flush, bool reply) {
    reported_flush_ = std::max(reported_flush_, flush);
    return repl_->SendStatus(std::max(wal_end_seen_, reported_flush_), reported_flush_, reply);
  }

  Status Handle(const std::string& data) {
    auto envelope = DecodeCopyData(data);
    if (!envelope.ok()) return envelope.status();
    if (auto* k = std::get_if<PrimaryKeepalive>(&*envelope)) {
      wal_end_seen_ = std::max(wal_end_seen_, k->wal_end);
      if (k->reply_requested) return SendStatus(reported_flush_, false);
      return Status::Ok();
    }
    const auto& x = std::get<XLogData>(*envelope);
    auto message = decoder_.Decode(x.payload);
    if (!message.ok()) {
      return Status::Error(
          fmt::format("{} (WAL position {})", message.message(), LsnText(x.wal_start)));
    }
    return std::visit([&](auto& m) { return On(m); }, *message);
  }

  // Where the changes of a streamed transaction go (those larger than the walsender's
  // logical_decoding_work_mem, with cdc.streaming on): a buffer that spills to disk at
  // once, applied at Stream Commit.
  ChangeBuffer* StreamedChanges() {
    auto it = streamed_.find(block_xid_);
    if (it == streamed_.end()) {
      it = streamed_.emplace(block_xid_, ChangeBuffer(SpillDir())).first;
    }
    return &it->second;
  }
  std::string SpillDir() const {
    if (!options_.spill_dir.empty()) return options_.spill_dir;
    return std::filesystem::temp_directory_path().string();
  }

  // A transaction sent whole (Begin ... Commit): Begin carries its commit LSN, so its
  // rows go into the RAW batch as they arrive, nothing held back; the batch commits only
  // between transactions.
  Status On(const BeginMessage& m) {
    open_ = OpenTransaction{.commit_lsn = m.final_lsn,
                            .committed_us = m.commit_time_us + kPostgresEpochUs,
                            .skip = m.final_lsn <= checkpoint_.commit_lsn};  // already in RAW
    return Status::Ok();
  }
  Status On(const CommitMessage& m) {
    if (!open_) return Status::Error("pgoutput: Commit without Begin");
    OpenTransaction txn = *open_;
    open_.reset();
    if (txn.skip || txn.seq == 0) return Status::Ok();
    if (m.commit_lsn != txn.commit_lsn) {
      return Status::Error(fmt::format("pgoutput: Commit at {} after Begin announced {}",
                                       LsnText(m.commit_lsn), LsnText(txn.commit_lsn)));
    }
    return TransactionAdded(m.commit_lsn, m.end_lsn, txn.committed_us, txn.seq);
  }
  Status On(const StreamStartMessage& m) {
    block_xid_ = m.xid;
    return Status::Ok();
  }
  Status On(const StreamStopMessage&) { return Status::Ok(); }
  Status On(const StreamCommitMessage& m) {
    auto it = streamed_.find(m.xid);
    if (it == streamed_.end()) return Status::Ok();  // nothing of ours in it
    ChangeBuffer txn = std::move(it->second);
    streamed_.erase(it);
    return ApplyStreamed(txn, m.commit_lsn, m.end_lsn, m.commit_time_us);
  }
  Status On(const StreamAbortMessage& m) {
    if (m.xid == m.subxid) {
      streamed_.erase(m.xid);
    } else if (auto it = streamed_.find(m.xid); it != streamed_.end()) {
      it->second.DropSubtransaction(m.subxid);
    }
    return Status::Ok();
  }
  Status On(const RelationMessage& m) {
    auto rel = std::make_shared<Relation>();
    rel->id = m.relation_id;
    rel->ns = m.ns;
    rel->name = m.name;
    rel->target = m.ns == options_.schema && m.name == options_.table;
    for (const auto& c : m.columns) {
      auto type = SqlType(c.type_oid, c.type_modifier);
      if (!type.ok()) return type.status();
      rel->columns.push_back({c.name, *type, c.key});
    }
    relations_[m.relation_id] = std::move(rel);
    return Status::Ok();
  }
  Status On(const TypeMessage&) { return Status::Ok(); }
  Status On(const OriginMessage&) { return Status::Ok(); }
  Status On(const LogicalMessage&) { return Status::Ok(); }

  Status AddChange(uint32_t xid, uint32_t relation_id, char op, Tuple tuple) {
    auto rel = relations_.find(relation_id);
    if (rel == relations_.end()) {
      return Status::Error(
          fmt::format("pgoutput: change for relation {} before its Relation message", relation_id));
    }
    if (!rel->second->target) return Status::Ok();
    if (decoder_.in_stream())
      return StreamedChanges()->Add({op, rel->second, std::move(tuple), xid});
    if (!open_) return Status::Error("pgoutput: change outside a transaction");
    if (open_->skip) return Status::Ok();
    // Per row: a span over the one relation, no allocation.
    if (Status s = PrepareColumns({&rel->second, 1}); !s.ok()) return s;
    return AddRow({op, rel->second, std::move(tuple), xid}, open_->commit_lsn, open_->committed_us,
                  open_->seq++);
  }
  Status On(InsertMessage& m) {
    return AddChange(m.xid, m.relation_id, 'c', std::move(m.new_tuple));
  }
  Status On(UpdateMessage& m) {
    return AddChange(m.xid, m.relation_id, 'u', std::move(m.new_tuple));
  }
  Status On(DeleteMessage& m) {
    return AddChange(m.xid, m.relation_id, 'd', std::move(m.old_tuple));
  }
  Status On(TruncateMessage& m) {
    for (uint32_t id : m.relation_ids) {
      if (Status s = AddChange(m.xid, id, 't', {}); !s.ok()) return s;
    }
    return Status::Ok();
  }
  template <typename T>
  Status On(const T&) = delete;

  // ---- applying transactions ----

  // Columns added at the source join RAW before the rows that carry them: in the open
  // batch's own transaction when there is one, else with EnsureRawTable.
  Status PrepareColumns(std::span<const std::shared_ptr<const Relation>> relations) {
    if (raw_ready_ && std::all_of(relations.begin(), relations.end(), [&](const auto& r) {
          return r->in_raw_at == raw_columns_.size();
        })) {
      return Status::Ok();
    }
    std::vector<RawColumn> added;
    for (const auto& relation : relations) {
      for (const auto& col : relation->columns) {
        bool known = std::any_of(raw_columns_.begin(), raw_columns_.end(),
                                 [&](const RawColumn& r) { return r.name == col.name; }) ||
                     std::any_of(added.begin(), added.end(),
                                 [&](const RawColumn& r) { return r.name == col.name; });
        if (!known) added.push_back(col);
      }
    }
    if (added.empty() && raw_ready_) return Status::Ok();
    size_t known = raw_columns_.size();
    raw_columns_.insert(raw_columns_.end(), added.begin(), added.end());
    if (batch_) {
      if (Status s = batch_->AddColumns(added); !s.ok()) return s;
    } else {
      if (Status s = wh_->EnsureRawTable(options_.table, raw_columns_,
                                         warehouse::Warehouse::KeyIndex::kNow);
          !s.ok()) {
        return s;
      }
      raw_ready_ = true;
    }
    for (const auto& relation : relations) relation->in_raw_at = raw_columns_.size();
    if (!added.empty() && known > 0) {
      log_.Info("cdc_raw_columns_added", {{"columns", static_cast<uint64_t>(raw_columns_.size())},
                                          {"added", static_cast<uint64_t>(added.size())}});
    }
    return Status::Ok();
  }

  // The erasure register's entries added since the last look: read in the open batch's
  // transaction, after its subject write lock (common/erasure.h).
  Status RefreshErased() {
    auto added = wh_->ErasedSince(erased_seq_);
    if (!added.ok()) return added.status();
    erased_seq_ = added->last_seq;
    erased_.insert(added->cliente_id_hmacs.begin(), added->cliente_id_hmacs.end());
    if (!erased_.empty() && options_.erasure_key.empty()) {
      return Status::Error(fmt::format(
          "the erasure register lists {} erased customers, and cdc has no erasure_key to keep "
          "their changes out of RAW: set erasure_key (the one `pdv subject` uses)",
          erased_.size()));
    }
    return Status::Ok();
  }
  bool IsErased(std::string_view cliente_id) const {
    if (erased_.empty()) return false;
    return erased_.contains(SubjectHmac(options_.erasure_key, kSubjectColumn, cliente_id));
  }
  static std::string_view Field(std::string_view line, int index) {
    for (int i = 0; i < index; ++i) {
      size_t tab = line.find('\t');
      if (tab == std::string_view::npos) return {};
      line.remove_prefix(tab + 1);
    }
    return line.substr(0, line.find('\t'));
  }
  // The change's cliente_id ("" if it has none: a truncate).
  static std::string_view SubjectOf(const Change& c) {
    const auto& cols = c.relation->columns;
    for (size_t i = 0; i < cols.size() && i < c.tuple.size(); ++i) {
      if (cols[i].name == kSubjectColumn) return c.tuple[i].data;
    }
    return {};
  }

  // One change into the open batch (opened if needed) at (lsn, seq); an erased
  // customer's change is left out.
  Status AddRow(const Change& c, Lsn lsn, int64_t committed_us, int64_t seq) {
    if (!batch_) {
      auto batch = wh_->BeginBatch(options_.table, options_.slot, raw_columns_);
      if (!batch.ok()) return batch.status();
      batch_ = std::move(*batch);
      batch_started_ = Clock::now();
      if (Status s = RefreshErased(); !s.ok()) return s;
    }
    if (c.op != 't' && IsErased(SubjectOf(c))) {
      ++erased_left_out_;
      return Status::Ok();
    }
    row_fields_.clear();
    if (Status s = Fields(c, &row_fields_); !s.ok()) return s;
    RawChange change{.lsn = lsn,
                     .seq = seq,
                     .op = c.op,
                     .committed_at_us = committed_us,
                     .deleted = c.op == 'd' || c.op == 't'};
    return batch_->Add(row_fields_, change);
  }

  // A streamed transaction, at its commit: read back from its buffer into the batch.
  Status ApplyStreamed(ChangeBuffer& txn, Lsn commit_lsn, Lsn end_lsn, int64_t commit_time_pg_us) {
    if (commit_lsn <= checkpoint_.commit_lsn) return Status::Ok();  // already in RAW
    if (txn.empty()) return Status::Ok();
    if (Status s = PrepareColumns(txn.relations()); !s.ok()) return s;
    int64_t committed = commit_time_pg_us + kPostgresEpochUs;
    int64_t seq = 0;
    Status applied = txn.ForEach(
        [&](const Change& c) -> Status { return AddRow(c, commit_lsn, committed, seq++); });
    if (!applied.ok()) return applied;
    if (seq == 0) return Status::Ok();
    return TransactionAdded(commit_lsn, end_lsn, committed, seq);
  }

  // A source transaction's `rows` rows are all in the batch: the batch's checkpoint moves
  // to its commit, and a full batch commits.
  Status TransactionAdded(Lsn commit_lsn, Lsn end_lsn, int64_t committed_us, int64_t rows) {
    batch_commit_times_.push_back(committed_us);
    rows_written_ += static_cast<uint64_t>(rows);
    batch_checkpoint_ =
        FromThisSource({.commit_lsn = commit_lsn, .flush_lsn = end_lsn, .snapshot_done = true});
    if (batch_->rows() >= options_.batch_rows) return FlushBatch();
    return Status::Ok();
  }

  // For each RAW column, the index of the same column in `rel` (-1: absent), cached on
  // the relation until RAW gains columns.
  const std::vector<int>& RawIndex(const Relation& rel) {
    if (rel.raw_index.size() != raw_columns_.size()) {
      rel.raw_index.assign(raw_columns_.size(), -1);
      for (size_t r = 0; r < raw_columns_.size(); ++r) {
        for (size_t i = 0; i < rel.columns.size(); ++i) {
          if (rel.columns[i].name == raw_columns_[r].name) rel.raw_index[r] = static_cast<int>(i);
        }
      }
    }
    return rel.raw_index;
  }

  // The row's values in RAW column order, as COPY text; remembers them so a later
  // change in the same batch can carry unchanged TOASTed values forward.
  Status Fields(const Change& c, std::string* out) {
    const auto& cols = c.relation->columns;
    std::string key;
    for (size_t i = 0; i < cols.size() && i < c.tuple.size(); ++i) {
      if (!cols[i].key) continue;
      key += c.tuple[i].data;
      key += '\x1f';
    }
    const std::vector<int>& index = RawIndex(*c.relation);
    for (size_t r = 0; r < raw_columns_.size(); ++r) {
      if (r) *out += '\t';
      int i = index[r];
      if (c.op == 't' || i < 0 || static_cast<size_t>(i) >= c.tuple.size()) {
        *out += "\\N";
        continue;
      }
      const ColumnValue& v = c.tuple[static_cast<size_t>(i)];
      if (v.kind == ColumnValue::Kind::kNull) {
        *out += "\\N";
      } else if (v.kind == ColumnValue::Kind::kUnchangedToast) {
        auto carried = CarriedForward(c, key, r);
        if (!carried.ok()) return carried.status();
        *out += *carried;
      } else {
        AppendCopyField(out, v.data);
      }
    }
    RememberRow(c.op, key, *out);
    return Status::Ok();
  }

  // Keeps the batch's latest row per key for carrying TOASTed values forward, within
  // cdc.transaction_memory_mb: past it the memory is dropped, and CarriedForward asks the
  // batch instead (slower, as right). Only a version with a value stored out of line
  // (TOAST: the row past ~2 kB, under the default toast_tuple_target) can be referred to
  // by a later 'u', so smaller ones are not kept: a lookup in the batch still finds them
  // (tables with a smaller target). A deletion, or a small version, drops the key's entry.
  void RememberRow(char op, const std::string& key, const std::string& fields) {
    bool keep = (op == 'c' || op == 'u') && fields.size() >= kRememberedRowMinBytes;
    if (!keep && batch_rows_.empty()) return;
    auto it = batch_rows_.find(key);
    if (it != batch_rows_.end()) {
      batch_rows_bytes_ -= it->first.size() + it->second.size();
      if (!keep) {
        batch_rows_.erase(it);
        return;
      }
      it->second = fields;
    } else if (keep) {
      it = batch_rows_.emplace(key, fields).first;
    } else {
      return;
    }
    batch_rows_bytes_ += it->first.size() + it->second.size();
    if (batch_rows_bytes_ > options_.transaction_memory_bytes) ForgetRows();
  }
  void ForgetRows() {
    batch_rows_.clear();
    batch_rows_.rehash(0);
    batch_rows_bytes_ = 0;
  }

  // The value of RAW column `r` for the row with `key` before this change: from an
  // earlier change in this batch, else from RAW.
  pdv::Result<std::string> CarriedForward(const Change& c, const std::string& key, size_t r) {
    if (auto row = batch_rows_.find(key); row != batch_rows_.end()) {
      std::string_view fields = row->second;
      for (size_t skip = 0; skip < r; ++skip) fields.remove_prefix(fields.find('\t') + 1);
      return std::string(fields.substr(0, fields.find('\t')));
    }
    std::vector<RawColumn> key_columns;
    std::vector<std::string> key_values;
    for (size_t i = 0; i < c.relation->columns.size() && i < c.tuple.size(); ++i) {
      if (!c.relation->columns[i].key) continue;
      key_columns.push_back(c.relation->columns[i]);
      key_values.push_back(c.tuple[i].data);
    }
    const std::string& column = raw_columns_[r].name;
    // On the batch, not the warehouse: the batch's connection may have its COPY open.
    auto latest = batch_->LatestValue(key_columns, key_values, column);
    if (!latest.ok()) return latest.status();
    if (!*latest) {
      return Status::Error(fmt::format(
          "cdc: update of {} leaves column {} unchanged (TOAST) but RAW has no earlier value",
          options_.table, column));
    }
    std::string field;
    AppendCopyField(&field, **latest);
    return field;
  }

  Status FlushBatch() {
    if (!batch_) return Status::Ok();
    uint64_t rows = batch_->rows();
    if (Status s = batch_->Commit(batch_checkpoint_, kRawChannel); !s.ok()) return s;
    batch_.reset();
    ForgetRows();
    checkpoint_ = batch_checkpoint_;
    ++batches_;
    int64_t now = NowUnixUs();
    log_.Debug("cdc_batch",
               {{"rows", rows},
                {"lsn", LsnText(checkpoint_.commit_lsn)},
                {"oldest_commit_ms",
                 batch_commit_times_.empty() ? 0.0 : (now - batch_commit_times_.front()) / 1e3}});
    for (int64_t committed : batch_commit_times_) {
      metrics_.commit_to_raw->Observe(static_cast<double>(now - committed) / 1e6);
    }
    batch_commit_times_.clear();
    metrics_.batch_rows->Observe(static_cast<double>(rows));
    metrics_.batches->Add(1);
    metrics_.rows->Add(static_cast<double>(rows));
    UpdateLagMetrics();
    // Acknowledge only now that RAW has it.
    return SendStatus(checkpoint_.flush_lsn, false);
  }

  const CdcOptions& options_;
  Logger& log_;
  Metrics& metrics_;
  bool resync_;
  pg::Lease& lease_;  // this instance's: every RAW commit is fenced by it
  bool resynced_ = false;
  bool started_ = false;
  std::optional<pg::Connection> source_;
  std::unique_ptr<warehouse::Warehouse> wh_;
  std::optional<ReplicationConnection> repl_;
  Checkpoint checkpoint_;
  std::unordered_set<std::string> erased_;  // the register's cliente_id HMACs
  int64_t erased_seq_ = 0;
  uint64_t erased_left_out_ = 0;
  ReplicationConnection::SystemIdentity identity_;  // the source reached this session
  PgOutputDecoder decoder_;
  std::map<std::pair<uint32_t, int32_t>, std::string> types_;
  std::map<uint32_t, std::shared_ptr<const Relation>> relations_;
  std::vector<RawColumn> raw_columns_;
  bool raw_ready_ = false;
  // The transaction being received whole (between Begin and Commit).
  struct OpenTransaction {
    Lsn commit_lsn = 0;
    int64_t committed_us = 0;  // Unix µs
    int64_t seq = 0;           // rows added so far
    bool skip = false;         // at or below the checkpoint: already in RAW
  };
  std::optional<OpenTransaction> open_;
  std::map<uint32_t, ChangeBuffer> streamed_;
  std::string row_fields_;  // reused for each row
  uint32_t block_xid_ = 0;
  std::unique_ptr<warehouse::RawBatch> batch_;
  Checkpoint batch_checkpoint_;
  std::unordered_map<std::string, std::string> batch_rows_;  // key -> fields, this batch
  size_t batch_rows_bytes_ = 0;
  std::vector<int64_t> batch_commit_times_;  // source commit times (Unix µs) in the batch
  Clock::time_point batch_started_, last_message_;
  Lsn wal_end_seen_ = 0, reported_flush_ = 0, target_lsn_ = 0;
  uint64_t rows_written_ = 0, batches_ = 0;
};

}  // namespace

// Every retention_interval, superseded RAW versions past retention_days go, a batch at a
// time, until a batch finds fewer than it may take.
void PruneRaw(const CdcOptions& options, Logger& log, std::stop_token stop) {
  do {
    int64_t removed = 0;
    while (!stop.stop_requested()) {
      auto r = warehouse::PruneSupersededVersions(options.warehouse_url, options.table,
                                                  options.retention_days, options.retention_batch);
      if (!r.ok()) {
        log.Warn("cdc_retention_failed", {{"error", r.message()}});
        break;
      }
      removed += *r;
      if (*r < options.retention_batch) break;
      if (!pg::SleepFor(milliseconds(20), stop)) break;
    }
    if (removed > 0) {
      log.Info("cdc_retention",
               {{"removed_versions", removed}, {"older_than_days", options.retention_days}});
    }
  } while (pg::SleepFor(options.retention_interval, stop));
}

Status Run(const CdcOptions& options, Logger& log, std::stop_token stop) {
  metrics::Registry registry;
  Metrics metrics(registry);
  std::unique_ptr<metrics::HttpExporter> exporter;
  if (!options.metrics_listen.empty()) {
    auto started = metrics::HttpExporter::Start(options.metrics_listen, registry, log);
    if (!started.ok()) return started.status();
    exporter = std::move(*started);
    auto hp = ParseHostPort(options.metrics_listen);
    log.Info("cdc_metrics_listening",
             {{"url", fmt::format("http://{}/metrics",
                                  FormatHostPort({hp.ok() ? hp->host : "?", exporter->port()}))}});
  }
  bool resync = options.resync;
  // RAW retention beside the stream, on a connection of its own: short batches that block
  // no writer, while this instance is the active one.
  auto work = [&](pg::LeaseHold& hold) -> Status {
    std::optional<std::jthread> retention;
    if (options.retention_days > 0) {
      retention.emplace([&options, &log](std::stop_token done) { PruneRaw(options, log, done); });
    }
    Session session(options, log, metrics, resync, hold.lease());
    Status s = session.Run(hold.stop_token());
    if (session.resynced()) resync = false;
    if (session.started()) hold.Healthy();
    return s;
  };
  return pg::RunUnderLease(
      {.lease = {.warehouse_url = options.warehouse_url, .stage = "cdc", .ttl = options.lease_ttl},
       .retryable = Retryable,
       .give_up = options.retry_timeout_s > 0
                      ? milliseconds(static_cast<int64_t>(options.retry_timeout_s * 1000))
                      : milliseconds(0),
       .retry_event = "cdc_reconnect",
       .on_retry = [&] { metrics.reconnects->Add(1); }},
      log, stop, work);
}

}  // namespace pdv::cdc
