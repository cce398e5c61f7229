#include "cdc/erasure_filter.h"

#include <fmt/format.h>

#include "common/erasure.h"

namespace pdv::cdc {

Status ErasureFilter::Refresh(warehouse::Warehouse& wh) {
  auto added = wh.ErasedSince(seq_);
  if (!added.ok()) return added.status();
  seq_ = added->last_seq;
  erased_.insert(added->cliente_id_hmacs.begin(), added->cliente_id_hmacs.end());
  if (!erased_.empty() && erasure_key_.empty()) {
    return Status::Error(fmt::format(
        "the erasure register lists {} erased customers, and cdc has no erasure_key to keep "
        "their changes out of RAW: set erasure_key (the one `pdv subject` uses)",
        erased_.size()));
  }
  return Status::Ok();
}

bool ErasureFilter::IsErased(std::string_view cliente_id) const {
  if (erased_.empty()) return false;
  return erased_.contains(SubjectHmac(erasure_key_, kSubjectColumn, cliente_id));
}

bool ErasureFilter::LeavesOut(const Change& c) {
  if (c.op == 't' || !IsErased(SubjectOf(c))) return false;
  ++left_out_;
  return true;
}

std::string_view ErasureFilter::SubjectOf(const Change& c) {
  const auto& cols = c.relation->columns;
  for (size_t i = 0; i < cols.size() && i < c.tuple.size(); ++i) {
    if (cols[i].name == kSubjectColumn) return c.tuple[i].data;
  }
  return {};
}

}  // namespace pdv::cdc
