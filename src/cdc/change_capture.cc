// The cdc stage's Session: connects to both servers and wires the parts that do the
// work (slot_manager, snapshot, stream_reader, raw_writer, erasure_filter, toast_carry,
// streamed_transactions) into one session; the stream loop; RAW retention; and Run, the
// stage under its lease (pg::RunUnderLease). See cdc.h.

#include <fmt/format.h>

#include <memory>
#include <optional>
#include <thread>

#include "cdc/cdc.h"
#include "cdc/copy_text.h"
#include "cdc/erasure_filter.h"
#include "cdc/failover_reconcile.h"
#include "cdc/metrics.h"
#include "cdc/pgoutput.h"
#include "cdc/raw_writer.h"
#include "cdc/replication_connection.h"
#include "cdc/slot_manager.h"
#include "cdc/snapshot.h"
#include "cdc/stream_reader.h"
#include "cdc/warehouse_durability.h"
#include "common/host_port.h"
#include "metrics/http_exporter.h"
#include "metrics/registry.h"
#include "pg/connection.h"
#include "pg/errors.h"
#include "pg/lease.h"
#include "pg/lease_runner.h"
#include "pg/reconnect.h"
#include "warehouse/warehouse.h"

namespace pdv::cdc {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using warehouse::Checkpoint;

// Errors a new session can get past: lost connections, and a slot still held by the
// walsender of a killed predecessor.
bool Retryable(const Status& s) { return pg::IsConnectionLost(s) || s.code() == "55006"; }

// One attempt at streaming: from connecting to both servers to a stop or a failure. The
// connections are its own, opened once each in Connect and closed with it.
class Session {
 public:
  Session(const CdcOptions& options, Logger& log, Metrics& metrics, bool resync, pg::Lease& lease)
      : options_(options),
        log_(log),
        metrics_(metrics),
        resync_(resync),
        lease_(lease),
        erasure_(options.erasure_key, options.erasure_register) {}

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
    if (Status s = slot_->TakeFromFormerHolder(stop); !s.ok()) return s;
    if (Status s = repl_->Start(options_.slot, writer_->checkpoint().flush_lsn,
                                options_.publication, options_.streaming);
        !s.ok()) {
      return s;
    }
    started_ = true;
    log_.Info("cdc_streaming", {{"slot", options_.slot},
                                {"from_lsn", LsnText(writer_->checkpoint().flush_lsn)},
                                {"once_target_lsn", LsnText(target_lsn_)}});
    return Stream(stop);
  }

  bool resynced() const { return resynced_; }
  // Got as far as streaming: the servers were reachable.
  bool started() const { return started_; }

 private:
  // The source (queries and the snapshot), the warehouse and the replication connection,
  // each opened once for the session.
  Status Connect() {
    auto source = pg::Connection::Connect(options_.oltp_url);
    if (!source.ok()) return source.status();
    source_.emplace(std::move(*source));
    auto wh = warehouse::ConnectPostgresWarehouse(options_.warehouse_url);
    if (!wh.ok()) return wh.status();
    wh_ = std::move(*wh);
    wh_->SetFence(lease_.FenceSql());
    {
      auto check = pg::Connection::Connect(options_.warehouse_url);
      if (!check.ok()) return check.status();
      if (Status s = WarnUnlessCommitsAreSynchronous(*check, log_); !s.ok()) return s;
    }
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
    slot_.emplace(options_, log_, *source_, *identity);
    writer_.emplace(options_, log_, metrics_, *wh_, *slot_, erasure_, [this] {
      UpdateLagMetrics();
      return SendStatus(writer_->checkpoint().flush_lsn, false);
    });
    reader_.emplace(options_, *source_, *writer_);
    return Status::Ok();
  }

  // Streams on from RAW's checkpoint when the slot and a finished snapshot exist; else
  // takes the snapshot (dropping what an unfinished one left), or says why it cannot.
  Status PrepareSlot(std::stop_token stop) {
    auto checkpoint = wh_->ReadCheckpoint(options_.slot);
    if (!checkpoint.ok()) return checkpoint.status();
    using SlotLoss = SlotManager::SlotLoss;
    // RAW came from another database cluster: stop before anything is made on this one.
    // Only an explicit --resync takes this source's snapshot (and marks deleted whatever
    // it lacks).
    if (!resync_ && checkpoint->has_value() &&
        slot_->WhySlotIsGone(**checkpoint) == SlotLoss::kOtherSystem) {
      return Status::Error(fmt::format(
          "{}: RAW's position (LSN {}) means nothing there, and --auto-resync does not resync "
          "from another database cluster: check oltp_url. If this source is meant, run `pdv "
          "cdc --resync` to take its snapshot (RAW then gets the current state of every row, "
          "and every customer it lacks is marked deleted)",
          slot_->SlotLossText(**checkpoint), LsnText((*checkpoint)->flush_lsn)));
    }
    if (Status s = slot_->EnsurePublication(); !s.ok()) return s;
    auto exists = slot_->SlotExists();
    if (!exists.ok()) return exists.status();
    bool slot_exists = *exists;
    bool with_deletions = false;

    if (resync_) {
      if (slot_exists) {
        if (Status s = slot_->DropSlot(); !s.ok()) return s;
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
                                    {"reason", slot_->SlotLossText(**checkpoint)},
                                    {"streamed_to_lsn", LsnText((*checkpoint)->flush_lsn)},
                                    {"from_timeline", (*checkpoint)->source_timeline},
                                    {"source_system_id", slot_->identity().system_id},
                                    {"source_timeline", slot_->identity().timeline}});
    } else if (!slot_exists) {
      if (checkpoint->has_value() && (*checkpoint)->snapshot_done) {
        return Status::Error(fmt::format(
            "replication slot {} does not exist on the source: {}. Changes after LSN {} can no "
            "longer be streamed. Run `pdv cdc --resync` to take a new snapshot (RAW then gets "
            "the current state of every row, deletions included)",
            options_.slot, slot_->SlotLossText(**checkpoint), LsnText((*checkpoint)->flush_lsn)));
      }
    } else if (!checkpoint->has_value() || !(*checkpoint)->snapshot_done) {
      // A snapshot was interrupted: its transaction rolled back, and its exported
      // snapshot died with its connection. Start over.
      log_.Warn("cdc_snapshot_restart", {{"slot", options_.slot}});
      if (Status s = slot_->DropSlot(); !s.ok()) return s;
    } else {
      // A failover to a replica with a copy of the slot (Patroni's permanent slots): RAW
      // goes on from its checkpoint, or is first reconciled with the new source.
      auto reconciled = ReconcileAfterFailover(Context(), **checkpoint, stop);
      if (!reconciled.ok()) return reconciled.status();
      if (*reconciled) {
        writer_->set_checkpoint((*reconciled)->checkpoint);
        writer_->SetRawColumns(std::move((*reconciled)->raw_columns));
      } else {
        writer_->set_checkpoint(**checkpoint);
      }
      return Status::Ok();
    }
    auto taken = TakeSnapshot(Context(), with_deletions, stop);
    // An HA manager that keeps the slot permanent (Patroni) may create it again between
    // our drop and our create: drop its copy and create ours, with the exported snapshot.
    for (int again = 0; again < 3 && !taken.ok() && taken.status().code() == "42710"; ++again) {
      log_.Warn("cdc_slot_recreated_by_another", {{"slot", options_.slot}});
      if (Status s = slot_->DropSlot(); !s.ok()) return s;
      taken = TakeSnapshot(Context(), with_deletions, stop);
    }
    if (!taken.ok()) return taken.status();
    writer_->set_checkpoint(taken->checkpoint);
    resynced_ = true;
    writer_->SetRawColumns(std::move(taken->raw_columns));
    return Status::Ok();
  }

  SnapshotContext Context() {
    return {.options = options_,
            .log = log_,
            .repl = *repl_,
            .source = *source_,
            .wh = *wh_,
            .erasure = erasure_,
            .lease = lease_,
            .slot = *slot_};
  }

  // Nothing held back: no open batch, no transaction being received, no streamed one.
  bool Idle() const {
    return !writer_->batch_open() && !reader_->in_transaction() && !reader_->streamed_pending();
  }

  Status Stream(std::stop_token stop) {
    auto last_status = Clock::now();
    auto last_report = Clock::now();
    auto last_ping = Clock::time_point();
    uint64_t reported_rows = 0;
    while (true) {
      bool idle = Idle();
      if (stop.stop_requested()) {
        if (!reader_->in_transaction() && !reader_->streamed_pending()) {
          if (Status s = writer_->Flush(); !s.ok()) return s;
        }
        return Status::Ok();
      }
      const Checkpoint& checkpoint = writer_->checkpoint();
      if (options_.once && idle && std::max(checkpoint.flush_lsn, wal_end_seen_) >= target_lsn_) {
        log_.Info("cdc_caught_up",
                  {{"lsn", LsnText(checkpoint.commit_lsn)}, {"rows", writer_->rows_written()}});
        return Status::Ok();
      }
      // Inside a transaction the batch cannot close: just read.
      bool may_close = writer_->batch_open() && !reader_->in_transaction();
      std::chrono::microseconds wait = milliseconds(1000);
      auto now = Clock::now();
      if (may_close) {
        auto due = std::min(last_message_ + options_.flush_idle,
                            writer_->batch_started() + options_.max_batch_age);
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
      if (writer_->batch_open() && !reader_->in_transaction() &&
          (now - last_message_ >= options_.flush_idle ||
           now - writer_->batch_started() >= options_.max_batch_age)) {
        if (Status s = writer_->Flush(); !s.ok()) return s;
      }
      idle = Idle();
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
        Report(now - last_report, reported_rows);
        last_report = now;
        reported_rows = writer_->rows_written();
      }
    }
  }

  // The cdc_progress line and the rate, over the `elapsed` since the last one.
  void Report(Clock::duration elapsed, uint64_t reported_rows) {
    double secs = std::chrono::duration<double>(elapsed).count();
    uint64_t rows = writer_->rows_written(), batches = writer_->batches();
    UpdateLagMetrics();
    metrics_.rows_per_second->Set((rows - reported_rows) / secs);
    log_.Info("cdc_progress",
              {{"lsn", LsnText(writer_->checkpoint().commit_lsn)},
               {"lag_bytes", metrics_.lag_bytes->Get()},
               {"lag_s", metrics_.lag_seconds->Get()},
               {"rows_per_s", metrics_.rows_per_second->Get()},
               {"rows", rows},
               {"batches", batches},
               {"avg_batch_rows", batches ? static_cast<double>(rows) / batches : 0.0}});
  }

  void UpdateLagMetrics() {
    const Checkpoint& checkpoint = writer_->checkpoint();
    metrics_.checkpoint_lsn->Set(static_cast<double>(checkpoint.commit_lsn));
    metrics_.wal_end_lsn->Set(static_cast<double>(wal_end_seen_));
    Lsn acknowledged = std::max(checkpoint.flush_lsn, reported_flush_);
    metrics_.lag_bytes->Set(
        wal_end_seen_ > acknowledged ? static_cast<double>(wal_end_seen_ - acknowledged) : 0.0);
    std::optional<int64_t> oldest = writer_->oldest_commit_us();
    metrics_.lag_seconds->Set(oldest ? static_cast<double>(NowUnixUs() - *oldest) / 1e6 : 0.0);
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
    return reader_->Apply(std::get<XLogData>(*envelope));
  }

  const CdcOptions& options_;
  Logger& log_;
  Metrics& metrics_;
  bool resync_;
  pg::Lease& lease_;  // this instance's: every RAW commit is fenced by it
  bool resynced_ = false;
  bool started_ = false;
  ErasureFilter erasure_;
  // Opened in Connect; declared in dependency order (each borrows those above it).
  std::optional<pg::Connection> source_;
  std::unique_ptr<warehouse::Warehouse> wh_;
  std::optional<ReplicationConnection> repl_;
  std::optional<SlotManager> slot_;
  std::optional<RawWriter> writer_;
  std::optional<StreamReader> reader_;
  Clock::time_point last_message_;
  Lsn wal_end_seen_ = 0, reported_flush_ = 0, target_lsn_ = 0;
};

}  // namespace

// Every retention_interval, superseded RAW versions past retention_days go, a batch at a
// time, until a batch finds fewer than it may take. One connection serves every round;
// it is opened again only after it was lost.
void PruneRaw(const CdcOptions& options, Logger& log, std::stop_token stop) {
  std::optional<pg::Connection> conn;
  do {
    int64_t removed = 0;
    while (!stop.stop_requested()) {
      if (!conn) {
        auto opened = pg::Connection::Connect(options.warehouse_url);
        if (!opened.ok()) {
          log.Warn("cdc_retention_failed", {{"error", opened.message()}});
          break;
        }
        conn.emplace(std::move(*opened));
      }
      auto r = warehouse::PruneSupersededVersions(*conn, options.table, options.retention_days,
                                                  options.retention_batch);
      if (!r.ok()) {
        log.Warn("cdc_retention_failed", {{"error", r.message()}});
        if (pg::IsConnectionLost(r.status())) conn.reset();
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
