#include "cdc/snapshot.h"

#include <fmt/format.h>

#include <chrono>
#include <optional>

#include "cdc/copy_text.h"
#include "common/erasure.h"
#include "common/lsn.h"
#include "common/progress.h"
#include "pg/errors.h"

namespace pdv::cdc {

using warehouse::Checkpoint;
using warehouse::RawChange;
using warehouse::Warehouse;

pdv::Result<std::vector<warehouse::RawColumn>> SourceColumns(pg::Connection& conn,
                                                             const std::string& qualified) {
  auto cols = conn.Exec(fmt::format(
      "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
      "coalesce(a.attnum = ANY (i.indkey), false) "
      "FROM pg_attribute a LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary "
      "WHERE a.attrelid = {}::regclass AND a.attnum > 0 AND NOT a.attisdropped "
      "AND a.attgenerated = '' ORDER BY a.attnum",
      conn.Literal(qualified)));
  if (!cols.ok()) return cols.status();
  std::vector<warehouse::RawColumn> raw_columns;
  for (int i = 0; i < cols->rows(); ++i) {
    raw_columns.push_back({cols->str(i, 0), cols->str(i, 1), cols->get(i, 2) == "t"});
  }
  return raw_columns;
}

pdv::Result<SnapshotTaken> TakeSnapshot(const SnapshotContext& ctx, bool with_deletions,
                                        std::stop_token stop) {
  const CdcOptions& options = ctx.options;
  auto created = ctx.repl.CreateSlot(options.slot);
  if (!created.ok()) return created.status();
  ctx.log.Info("cdc_slot_created",
               {{"slot", options.slot}, {"consistent_point", LsnText(created->consistent_point)}});
  pg::Connection& conn = ctx.source;
  // Reading in the exported snapshot takes no lock that blocks writers.
  if (auto r = conn.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); !r.ok()) {
    return r.status();
  }
  if (auto r = conn.Exec("SET TRANSACTION SNAPSHOT " + conn.Literal(created->snapshot_name));
      !r.ok()) {
    // The exported snapshot lives as long as the replication connection that made it:
    // this fails when that connection was just lost (a killed walsender, a restart).
    // A new session drops the slot of the unfinished snapshot and starts over.
    return Status::Error(
        fmt::format("snapshot export lost with the replication connection: {}", r.message()),
        pg::kConnectionLost);
  }
  std::string qualified = conn.Identifier(options.schema) + "." + conn.Identifier(options.table);
  auto columns = SourceColumns(conn, qualified);
  if (!columns.ok()) return columns.status();
  SnapshotTaken taken;
  std::vector<warehouse::RawColumn>& raw_columns = taken.raw_columns;
  raw_columns = std::move(*columns);
  std::string select;
  for (size_t i = 0; i < raw_columns.size(); ++i) {
    select += (i ? ", " : "") + conn.Identifier(raw_columns[i].name);
  }
  // A first snapshot builds RAW's key index after its rows are in (a resync appends to
  // a RAW that has it).
  if (Status s = ctx.wh.EnsureRawTable(
          options.table, raw_columns,
          with_deletions ? Warehouse::KeyIndex::kNow : Warehouse::KeyIndex::kLater);
      !s.ok()) {
    return s;
  }
  auto count = conn.Exec("SELECT count(*) FROM " + qualified);
  if (!count.ok()) return count.status();
  uint64_t total = std::stoull(count->str(0, 0));

  auto batch = ctx.wh.BeginBatch(options.table, options.slot, raw_columns);
  if (!batch.ok()) return batch.status();
  if (Status s = ctx.erasure.Refresh(ctx.wh); !s.ok()) return s;
  int subject_field = -1;  // cliente_id's position in a snapshot line
  for (size_t i = 0; i < raw_columns.size(); ++i) {
    if (raw_columns[i].name == kSubjectColumn) subject_field = static_cast<int>(i);
  }
  uint64_t erased_left_out = 0;
  // A resync stages the snapshot and appends only what differs from RAW.
  if (with_deletions) {
    if (Status s = (*batch)->StageSnapshotRows(); !s.ok()) return s;
  }
  std::optional<Progress> progress;
  if (options.progress) progress.emplace(options.progress, "cdc_snapshot", total);
  RawChange change{.lsn = created->consistent_point, .op = 'r', .committed_at_us = NowUnixUs()};
  int64_t seq = 0;
  Status copied = conn.CopyOut(
      fmt::format("COPY (SELECT {} FROM {}) TO STDOUT", select, qualified),
      [&](std::string_view line) -> Status {
        if (stop.stop_requested()) return Status::Error("stopped during the snapshot");
        if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
        change.seq = seq++;
        if ((seq & 1023) == 0) {
          if (progress) progress->Update(static_cast<uint64_t>(seq));
          if (Status kept = ctx.lease.Keep(); !kept.ok()) return kept;
        }
        if (subject_field >= 0 && ctx.erasure.IsErased(CopyField(line, subject_field))) {
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
  Checkpoint done = ctx.slot.FromThisSource({.commit_lsn = created->consistent_point,
                                             .flush_lsn = created->consistent_point,
                                             .snapshot_done = true});
  uint64_t rows = (*batch)->rows();
  if (Status s = (*batch)->Commit(done, kRawChannel); !s.ok()) return s;
  if (progress) progress->Finish(static_cast<uint64_t>(seq));
  (void)conn.Exec("COMMIT");
  taken.checkpoint = done;
  // RAW's key index, if the snapshot left it for now (a process stopped before this
  // point builds it at its next start, here or on its first change).
  auto indexing = std::chrono::steady_clock::now();
  if (Status s = ctx.wh.EnsureRawTable(options.table, raw_columns, Warehouse::KeyIndex::kNow);
      !s.ok()) {
    return s;
  }
  double index_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - indexing).count();
  ctx.log.Info("cdc_snapshot_done", {{"rows", static_cast<uint64_t>(seq) - erased_left_out},
                                     {"deletions", deletions},
                                     {"unchanged_not_appended", unchanged},
                                     {"appended", rows},
                                     {"lsn", LsnText(done.commit_lsn)},
                                     {"erased_left_out", erased_left_out},
                                     {"raw_index_s", index_s}});
  return taken;
}

}  // namespace pdv::cdc
