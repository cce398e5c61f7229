#include "cdc/failover_reconcile.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "cdc/copy_text.h"
#include "cdc/pgoutput.h"
#include "cdc/replication_connection.h"
#include "cdc/timeline_history.h"
#include "common/erasure.h"
#include "common/time_text.h"
#include "pg/reconnect.h"

namespace pdv::cdc {
namespace {

using warehouse::Checkpoint;
using warehouse::RawChange;
using warehouse::Warehouse;

// bytea's hex text ("\x0a1b..." or "0a1b...") as bytes.
std::string FromHex(std::string_view hex) {
  if (hex.size() >= 2 && hex[0] == '\\' && hex[1] == 'x') hex.remove_prefix(2);
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return 0;
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(nibble(hex[i]) << 4 | nibble(hex[i + 1]));
  }
  return out;
}

// The keys of `table` that transactions committed in [from, upto) changed, read from the
// slot without consuming it (pg_logical_slot_peek_binary_changes decodes from the slot's
// position; transactions before `from` are history RAW already has).
class ChangedKeys {
 public:
  ChangedKeys(const CdcOptions& options, Lsn from) : options_(options), from_(from) {}

  Status Read(pg::Connection& source, Lsn upto) {
    std::string sql = fmt::format(
        "COPY (SELECT encode(data, 'hex') FROM pg_logical_slot_peek_binary_changes({}, {}, "
        "NULL, 'proto_version', '1', 'publication_names', {})) TO STDOUT",
        source.Literal(options_.slot), source.Literal(LsnText(upto)),
        source.Literal(options_.publication));
    return source.CopyOut(sql, [&](std::string_view line) -> Status {
      if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
      std::string data = FromHex(line);
      auto message = decoder_.Decode(data);
      if (!message.ok()) return message.status();
      return std::visit([&](auto& m) { return On(m); }, *message);
    });
  }
  const std::set<std::string>& keys() const { return keys_; }

 private:
  Status On(const BeginMessage& m) {
    in_range_ = m.final_lsn >= from_;
    return Status::Ok();
  }
  Status On(const RelationMessage& m) {
    int key = -1, keys = 0;
    for (size_t i = 0; i < m.columns.size(); ++i) {
      if (m.columns[i].key) {
        key = static_cast<int>(i);
        ++keys;
      }
    }
    bool target = m.ns == options_.schema && m.name == options_.table;
    if (target && keys != 1) {
      return Status::Error(fmt::format(
          "reconcile after a failover needs {}.{} to have a one-column key (it has {}): run "
          "`pdv cdc --resync`",
          m.ns, m.name, keys));
    }
    key_column_[m.relation_id] = target ? key : -1;
    return Status::Ok();
  }
  void AddKey(uint32_t relation_id, const Tuple& tuple) {
    auto it = key_column_.find(relation_id);
    if (!in_range_ || it == key_column_.end() || it->second < 0) return;
    auto column = static_cast<size_t>(it->second);
    if (column < tuple.size() && tuple[column].kind == ColumnValue::Kind::kText) {
      keys_.insert(tuple[column].data);
    }
  }
  Status On(const InsertMessage& m) {
    AddKey(m.relation_id, m.new_tuple);
    return Status::Ok();
  }
  Status On(const UpdateMessage& m) {
    AddKey(m.relation_id, m.new_tuple);
    if (m.old_kind != 0) AddKey(m.relation_id, m.old_tuple);  // a changed key
    return Status::Ok();
  }
  Status On(const DeleteMessage& m) {
    AddKey(m.relation_id, m.old_tuple);
    return Status::Ok();
  }
  Status On(const TruncateMessage& m) {
    for (uint32_t id : m.relation_ids) {
      auto it = key_column_.find(id);
      if (in_range_ && it != key_column_.end() && it->second >= 0) {
        return Status::Error(
            "the new primary truncated the table after the failover's switch point: a "
            "targeted re-read cannot follow that; run `pdv cdc --resync`");
      }
    }
    return Status::Ok();
  }
  template <typename T>
  Status On(const T&) {
    return Status::Ok();
  }

  const CdcOptions& options_;
  Lsn from_;
  PgOutputDecoder decoder_;
  bool in_range_ = false;
  std::map<uint32_t, int> key_column_;  // relation -> its key's position (-1: not ours)
  std::set<std::string> keys_;
};

// A PostgreSQL text array literal of `values`.
std::string TextArray(const std::vector<std::string>& values) {
  std::string out = "{";
  for (const auto& v : values) {
    out += out.size() > 1 ? ",\"" : "\"";
    for (char c : v) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

}  // namespace

pdv::Result<std::optional<SnapshotTaken>> ReconcileAfterFailover(const SnapshotContext& ctx,
                                                                 const Checkpoint& checkpoint,
                                                                 std::stop_token stop) {
  const auto& identity = ctx.slot.identity();
  if (checkpoint.source_system_id.empty() || checkpoint.source_system_id != identity.system_id ||
      identity.timeline <= checkpoint.source_timeline) {
    return std::optional<SnapshotTaken>();
  }
  auto history = ctx.repl.TimelineHistory(identity.timeline);
  if (!history.ok()) return history.status();
  std::optional<Lsn> switch_point = TimelineSwitchPoint(*history, checkpoint.source_timeline);
  if (!switch_point) {
    return Status::Error(fmt::format(
        "the source is on timeline {} and RAW was streamed from timeline {}, which the source's "
        "timeline history does not list: RAW and the source diverged somewhere unknown. Run "
        "`pdv cdc --resync`",
        identity.timeline, checkpoint.source_timeline));
  }
  const Lsn from = *switch_point;
  const Lsn raw_lsn = checkpoint.commit_lsn;
  if (raw_lsn < from) {
    ctx.log.Warn("cdc_source_failover",
                 {{"from_timeline", checkpoint.source_timeline},
                  {"to_timeline", identity.timeline},
                  {"switch_lsn", LsnText(from)},
                  {"raw_lsn", LsnText(raw_lsn)},
                  {"lost_from_lsn", LsnText(from)},
                  {"raw_has_lost_changes", false},
                  {"note",
                   "what the old primary wrote from switch_lsn on was not replicated and is gone "
                   "from the source; RAW stopped before it, so RAW lost nothing and streams on "
                   "from raw_lsn on the copied slot"}});
    return std::optional<SnapshotTaken>();
  }

  const CdcOptions& options = ctx.options;
  pg::Connection& source = ctx.source;
  std::string qualified =
      source.Identifier(options.schema) + "." + source.Identifier(options.table);
  // The columns (and the key) first, outside the snapshot's transaction: SET TRANSACTION
  // SNAPSHOT must come first in it.
  auto columns = SourceColumns(source, qualified);
  if (!columns.ok()) return columns.status();
  std::vector<warehouse::RawColumn> raw_columns = std::move(*columns);
  std::string key_column, select;
  int keys = 0;
  for (const auto& c : raw_columns) {
    select += (select.empty() ? "" : ", ") + source.Identifier(c.name);
    if (c.key) {
      key_column = c.name;
      ++keys;
    }
  }
  if (keys != 1) {
    return Status::Error(fmt::format(
        "reconcile after a failover needs {} to have a one-column primary key (it has {}): run "
        "`pdv cdc --resync`",
        qualified, keys));
  }
  auto lost_keys = ctx.wh.RawKeysFrom(options.table, key_column, from);
  if (!lost_keys.ok()) return lost_keys.status();
  ctx.log.Warn("cdc_source_failover",
               {{"from_timeline", checkpoint.source_timeline},
                {"to_timeline", identity.timeline},
                {"switch_lsn", LsnText(from)},
                {"raw_lsn", LsnText(raw_lsn)},
                {"lost_from_lsn", LsnText(from)},
                {"lost_to_lsn", LsnText(raw_lsn)},
                {"raw_has_lost_changes", true},
                {"keys_in_lost_range", static_cast<uint64_t>(lost_keys->size())},
                {"note",
                 "RAW has changes in [lost_from_lsn, lost_to_lsn] of the old primary that were "
                 "not replicated and are gone from the source: those keys are re-read from the "
                 "new primary"}});

  // The re-read's snapshot: a temporary slot's (exported, exact), past RAW's checkpoint so
  // that its rows sort after everything RAW has. The new primary's WAL may not be there
  // yet right after the promotion: wait for it to be.
  std::optional<ReplicationConnection> exporter;
  std::optional<SlotCreated> snapshot;
  std::string temp_slot = fmt::format("{}_reconcile_{}", options.slot, ::getpid());
  for (int attempt = 0; !stop.stop_requested(); ++attempt) {
    auto conn = ReplicationConnection::Connect(options.oltp_url, "");
    if (!conn.ok()) return conn.status();
    exporter.emplace(std::move(*conn));
    auto created = exporter->CreateSlot(temp_slot, /*temporary=*/true);
    if (!created.ok()) return created.status();
    if (created->consistent_point > raw_lsn) {
      snapshot = *created;
      break;
    }
    exporter.reset();  // its temporary slot goes with it
    if (attempt == 0) {
      ctx.log.Info(
          "cdc_failover_waiting_for_source_wal",
          {{"source_wal_lsn", LsnText(created->consistent_point)}, {"raw_lsn", LsnText(raw_lsn)}});
    }
    if (Status kept = ctx.lease.Keep(); !kept.ok()) return kept;
    pg::SleepFor(std::chrono::milliseconds(200), stop);
  }
  if (!snapshot) return Status::Error("stopped while reconciling after a failover");
  const Lsn at = snapshot->consistent_point;

  // Keys the new timeline changed before `at`: their changes are not streamed (the
  // stream goes on from `at`), their state at `at` is read instead.
  ChangedKeys changed(options, from);
  if (Status s = changed.Read(source, at); !s.ok()) return s;
  std::set<std::string> all(lost_keys->begin(), lost_keys->end());
  all.insert(changed.keys().begin(), changed.keys().end());
  std::vector<std::string> key_list(all.begin(), all.end());

  if (auto r = source.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); !r.ok()) {
    return r.status();
  }
  if (auto r = source.Exec("SET TRANSACTION SNAPSHOT " + source.Literal(snapshot->snapshot_name));
      !r.ok()) {
    return Status::Error(
        fmt::format("reconcile snapshot lost with its replication connection: {}", r.message()),
        pg::kConnectionLost);
  }
  if (Status s = ctx.wh.EnsureRawTable(options.table, raw_columns, Warehouse::KeyIndex::kNow);
      !s.ok()) {
    return s;
  }
  auto batch = ctx.wh.BeginBatch(options.table, options.slot, raw_columns);
  if (!batch.ok()) return batch.status();
  if (Status s = ctx.erasure.Refresh(ctx.wh); !s.ok()) return s;
  int subject_field = -1;
  for (size_t i = 0; i < raw_columns.size(); ++i) {
    if (raw_columns[i].name == kSubjectColumn) subject_field = static_cast<int>(i);
  }
  if (Status s = (*batch)->StageSnapshotRows(); !s.ok()) return s;
  RawChange change{.lsn = at, .op = 'r', .committed_at_us = NowUnixUs()};
  int64_t seq = 0;
  uint64_t erased_left_out = 0;
  if (!key_list.empty()) {
    Status copied = source.CopyOut(
        fmt::format("COPY (SELECT {} FROM {} WHERE {}::text = ANY ({}::text[])) TO STDOUT", select,
                    qualified, source.Identifier(key_column), source.Literal(TextArray(key_list))),
        [&](std::string_view line) -> Status {
          if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
          if (subject_field >= 0 && ctx.erasure.IsErased(CopyField(line, subject_field))) {
            ++erased_left_out;
            return Status::Ok();
          }
          change.seq = seq++;
          return (*batch)->Add(line, change);
        });
    if (!copied.ok()) return copied;
  }
  uint64_t found = static_cast<uint64_t>(seq);
  if (Status s = (*batch)->AddDeletionsOfMissingKeysAmong(
          {.lsn = at, .op = 'd', .committed_at_us = NowUnixUs(), .deleted = true}, key_list);
      !s.ok()) {
    return s;
  }
  uint64_t deletions = (*batch)->rows() - found;
  auto unchanged = (*batch)->AppendChangedSnapshotRows({.lsn = at});
  if (!unchanged.ok()) return unchanged.status();
  Checkpoint done =
      ctx.slot.FromThisSource({.commit_lsn = at, .flush_lsn = at, .snapshot_done = true});
  uint64_t appended = (*batch)->rows();
  if (Status s = (*batch)->Commit(done, kRawChannel); !s.ok()) return s;
  (void)source.Exec("COMMIT");
  ctx.log.Warn("cdc_failover_reconciled",
               {{"keys_reread", static_cast<uint64_t>(key_list.size())},
                {"keys_in_lost_range", static_cast<uint64_t>(lost_keys->size())},
                {"keys_changed_since_switch", static_cast<uint64_t>(changed.keys().size())},
                {"deletions", deletions},
                {"unchanged_not_appended", *unchanged},
                {"appended", appended},
                {"erased_left_out", erased_left_out},
                {"at_lsn", LsnText(at)},
                {"timeline", identity.timeline}});
  return std::optional<SnapshotTaken>(SnapshotTaken{done, std::move(raw_columns)});
}

}  // namespace pdv::cdc
