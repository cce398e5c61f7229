#include "cdc/stream_reader.h"

#include <fmt/format.h>

#include <variant>

#include "common/time_text.h"

namespace pdv::cdc {

Status StreamReader::Apply(const XLogData& x) {
  auto message = decoder_.Decode(x.payload);
  if (!message.ok()) {
    return Status::Error(
        fmt::format("{} (WAL position {})", message.message(), LsnText(x.wal_start)));
  }
  return std::visit([&](auto& m) { return On(m); }, *message);
}

pdv::Result<std::string> StreamReader::SqlType(uint32_t oid, int32_t typmod) {
  auto key = std::make_pair(oid, typmod);
  if (auto it = types_.find(key); it != types_.end()) return it->second;
  auto r = source_.Exec(
      fmt::format("SELECT format_type({}, {})", oid, typmod < 0 ? "NULL" : std::to_string(typmod)));
  if (!r.ok()) return r.status();
  return types_[key] = r->str(0, 0);
}

// A transaction sent whole (Begin ... Commit): Begin carries its commit LSN, so its
// rows go into the RAW batch as they arrive, nothing held back; the batch commits only
// between transactions.
Status StreamReader::On(const BeginMessage& m) {
  open_ = OpenTransaction{.commit_lsn = m.final_lsn,
                          .committed_us = m.commit_time_us + kPostgresEpochUs,
                          .skip = m.final_lsn <= writer_.checkpoint().commit_lsn};  // in RAW
  return Status::Ok();
}

Status StreamReader::On(const CommitMessage& m) {
  if (!open_) return Status::Error("pgoutput: Commit without Begin");
  OpenTransaction txn = *open_;
  open_.reset();
  if (txn.skip || txn.seq == 0) return Status::Ok();
  if (m.commit_lsn != txn.commit_lsn) {
    return Status::Error(fmt::format("pgoutput: Commit at {} after Begin announced {}",
                                     LsnText(m.commit_lsn), LsnText(txn.commit_lsn)));
  }
  return writer_.TransactionAdded(m.commit_lsn, m.end_lsn, txn.committed_us, txn.seq);
}

Status StreamReader::On(const StreamStartMessage& m) {
  streamed_.StartBlock(m.xid);
  return Status::Ok();
}

Status StreamReader::On(const StreamCommitMessage& m) {
  std::optional<ChangeBuffer> txn = streamed_.Take(m.xid);
  if (!txn) return Status::Ok();  // nothing of ours in it
  return ApplyStreamed(*txn, m.commit_lsn, m.end_lsn, m.commit_time_us);
}

Status StreamReader::On(const StreamAbortMessage& m) {
  streamed_.Abort(m.xid, m.subxid);
  return Status::Ok();
}

Status StreamReader::On(const RelationMessage& m) {
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

Status StreamReader::AddChange(uint32_t xid, uint32_t relation_id, char op, Tuple tuple) {
  auto rel = relations_.find(relation_id);
  if (rel == relations_.end()) {
    return Status::Error(
        fmt::format("pgoutput: change for relation {} before its Relation message", relation_id));
  }
  if (!rel->second->target) return Status::Ok();
  if (decoder_.in_stream()) return streamed_.Add({op, rel->second, std::move(tuple), xid});
  if (!open_) return Status::Error("pgoutput: change outside a transaction");
  if (open_->skip) return Status::Ok();
  // Per row: a span over the one relation, no allocation.
  if (Status s = writer_.PrepareColumns({&rel->second, 1}); !s.ok()) return s;
  return writer_.AddRow({op, rel->second, std::move(tuple), xid}, open_->commit_lsn,
                        open_->committed_us, open_->seq++);
}

Status StreamReader::On(InsertMessage& m) {
  return AddChange(m.xid, m.relation_id, 'c', std::move(m.new_tuple));
}
Status StreamReader::On(UpdateMessage& m) {
  return AddChange(m.xid, m.relation_id, 'u', std::move(m.new_tuple));
}
Status StreamReader::On(DeleteMessage& m) {
  return AddChange(m.xid, m.relation_id, 'd', std::move(m.old_tuple));
}
Status StreamReader::On(TruncateMessage& m) {
  for (uint32_t id : m.relation_ids) {
    if (Status s = AddChange(m.xid, id, 't', {}); !s.ok()) return s;
  }
  return Status::Ok();
}

// A streamed transaction, at its commit: read back from its buffer into the batch.
Status StreamReader::ApplyStreamed(ChangeBuffer& txn, Lsn commit_lsn, Lsn end_lsn,
                                   int64_t commit_time_pg_us) {
  if (commit_lsn <= writer_.checkpoint().commit_lsn) return Status::Ok();  // already in RAW
  if (txn.empty()) return Status::Ok();
  if (Status s = writer_.PrepareColumns(txn.relations()); !s.ok()) return s;
  int64_t committed = commit_time_pg_us + kPostgresEpochUs;
  int64_t seq = 0;
  Status applied = txn.ForEach(
      [&](const Change& c) -> Status { return writer_.AddRow(c, commit_lsn, committed, seq++); });
  if (!applied.ok()) return applied;
  if (seq == 0) return Status::Ok();
  return writer_.TransactionAdded(commit_lsn, end_lsn, committed, seq);
}

}  // namespace pdv::cdc
