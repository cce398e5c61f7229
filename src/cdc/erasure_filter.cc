#include "cdc/erasure_filter.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cerrno>

#include "common/erasure.h"
#include "common/erasure_register_file.h"

namespace pdv::cdc {

Status ErasureFilter::RefreshFromFile() {
  struct stat st {};
  if (::stat(register_file_.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();  // no erasure yet
  } else if (st.st_size == file_size_ && st.st_ino == file_inode_) {
    return Status::Ok();
  }
  auto records = ReadErasureRegisterFile(register_file_);
  if (!records.ok()) return records.status();
  for (const auto& r : *records) {
    for (const auto& s : r.subjects) {
      if (s.kind == kSubjectColumn) erased_.insert(s.hmac);
    }
  }
  file_size_ = st.st_size;
  file_inode_ = st.st_ino;
  return Status::Ok();
}

Status ErasureFilter::Refresh(warehouse::Warehouse& wh) {
  auto added = wh.ErasedSince(seq_);
  if (!added.ok()) return added.status();
  seq_ = added->last_seq;
  erased_.insert(added->cliente_id_hmacs.begin(), added->cliente_id_hmacs.end());
  if (!register_file_.empty()) {
    if (Status s = RefreshFromFile(); !s.ok()) return s;
  }
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
