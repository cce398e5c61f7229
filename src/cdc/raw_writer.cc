#include "cdc/raw_writer.h"

#include <fmt/format.h>

#include <algorithm>

#include "cdc/copy_text.h"
#include "common/lsn.h"

namespace pdv::cdc {

using warehouse::RawChange;
using warehouse::RawColumn;

RawWriter::RawWriter(const CdcOptions& options, Logger& log, Metrics& metrics,
                     warehouse::Warehouse& wh, const SlotManager& slot, ErasureFilter& erasure,
                     Committed committed)
    : options_(options),
      log_(log),
      metrics_(metrics),
      wh_(wh),
      slot_(slot),
      erasure_(erasure),
      committed_(std::move(committed)),
      toast_(options.transaction_memory_bytes, options.table) {}

void RawWriter::SetRawColumns(std::vector<RawColumn> columns) {
  raw_columns_ = std::move(columns);
  raw_ready_ = true;
}

Status RawWriter::PrepareColumns(std::span<const std::shared_ptr<const Relation>> relations) {
  if (raw_ready_ && std::all_of(relations.begin(), relations.end(), [&](const auto& r) {
        return r->in_raw_at == raw_columns_.size();
      })) {
    return Status::Ok();
  }
  std::vector<RawColumn> added;
  auto named = [](const std::string& name) {
    return [&name](const RawColumn& r) { return r.name == name; };
  };
  for (const auto& relation : relations) {
    for (const auto& col : relation->columns) {
      bool known = std::any_of(raw_columns_.begin(), raw_columns_.end(), named(col.name)) ||
                   std::any_of(added.begin(), added.end(), named(col.name));
      if (!known) added.push_back(col);
    }
  }
  if (added.empty() && raw_ready_) return Status::Ok();
  size_t known = raw_columns_.size();
  raw_columns_.insert(raw_columns_.end(), added.begin(), added.end());
  if (batch_) {
    if (Status s = batch_->AddColumns(added); !s.ok()) return s;
  } else {
    if (Status s =
            wh_.EnsureRawTable(options_.table, raw_columns_, warehouse::Warehouse::KeyIndex::kNow);
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

Status RawWriter::AddRow(const Change& c, uint64_t lsn, int64_t committed_us, int64_t seq) {
  if (!batch_) {
    auto batch = wh_.BeginBatch(options_.table, options_.slot, raw_columns_);
    if (!batch.ok()) return batch.status();
    batch_ = std::move(*batch);
    batch_started_ = std::chrono::steady_clock::now();
    if (Status s = erasure_.Refresh(wh_); !s.ok()) return s;
  }
  if (erasure_.LeavesOut(c)) return Status::Ok();
  row_fields_.clear();
  if (Status s = Fields(c, &row_fields_); !s.ok()) return s;
  RawChange change{.lsn = lsn,
                   .seq = seq,
                   .op = c.op,
                   .committed_at_us = committed_us,
                   .deleted = c.op == 'd' || c.op == 't'};
  return batch_->Add(row_fields_, change);
}

Status RawWriter::TransactionAdded(uint64_t commit_lsn, uint64_t end_lsn, int64_t committed_us,
                                   int64_t rows) {
  batch_commit_times_.push_back(committed_us);
  rows_written_ += static_cast<uint64_t>(rows);
  batch_checkpoint_ =
      slot_.FromThisSource({.commit_lsn = commit_lsn, .flush_lsn = end_lsn, .snapshot_done = true});
  if (batch_->rows() >= options_.batch_rows) return Flush();
  return Status::Ok();
}

// For each RAW column, the index of the same column in `rel` (-1: absent), cached on
// the relation until RAW gains columns.
const std::vector<int>& RawWriter::RawIndex(const Relation& rel) {
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

// The row's values in RAW column order, as COPY text; remembered so that a later change
// in the same batch can carry unchanged TOASTed values forward.
Status RawWriter::Fields(const Change& c, std::string* out) {
  std::string key = ToastCarry::KeyOf(c);
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
      auto carried = toast_.CarriedForward(c, key, r, raw_columns_[r].name, *batch_);
      if (!carried.ok()) return carried.status();
      *out += *carried;
    } else {
      AppendCopyField(out, v.data);
    }
  }
  toast_.Remember(c.op, key, *out);
  return Status::Ok();
}

std::optional<int64_t> RawWriter::oldest_commit_us() const {
  if (batch_commit_times_.empty()) return std::nullopt;
  return batch_commit_times_.front();
}

Status RawWriter::Flush() {
  if (!batch_) return Status::Ok();
  uint64_t rows = batch_->rows();
  if (Status s = batch_->Commit(batch_checkpoint_, kRawChannel); !s.ok()) return s;
  batch_.reset();
  toast_.Forget();
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
  // Acknowledged only now that RAW has it.
  return committed_();
}

}  // namespace pdv::cdc
