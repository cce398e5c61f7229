// See change_buffer.h. The spill format is private to one process: per change, op (1
// byte), relation index, subxid and column count (u32 each), then per column its kind (1
// byte), length (u32) and bytes. Host byte order.

#include "cdc/change_buffer.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace pdv::cdc {
namespace {

constexpr size_t kFileBufferBytes = 1 << 20;

template <typename T>
bool Put(std::FILE* f, T v) {
  return std::fwrite(&v, sizeof v, 1, f) == 1;
}
template <typename T>
bool Get(std::FILE* f, T* v) {
  return std::fread(v, sizeof *v, 1, f) == 1;
}

}  // namespace

size_t ChangeBytes(const Change& change) {
  size_t bytes = sizeof(Change) + change.tuple.capacity() * sizeof(ColumnValue);
  for (const auto& v : change.tuple) bytes += v.data.capacity() > 15 ? v.data.capacity() : 0;
  return bytes;
}

ChangeBuffer::ChangeBuffer(size_t memory_limit, std::string spill_dir)
    : memory_limit_(memory_limit), spill_dir_(std::move(spill_dir)) {}

uint32_t ChangeBuffer::RelationIndex(const std::shared_ptr<const Relation>& relation) {
  auto it = std::find(relations_.begin(), relations_.end(), relation);
  if (it != relations_.end()) return static_cast<uint32_t>(it - relations_.begin());
  relations_.push_back(relation);
  return static_cast<uint32_t>(relations_.size() - 1);
}

Status ChangeBuffer::Add(Change change) {
  (void)RelationIndex(change.relation);
  ++count_;
  if (file_) return Write(change);
  memory_bytes_ += ChangeBytes(change);
  changes_.push_back(std::move(change));
  if (memory_bytes_ > memory_limit_) return Spill();
  return Status::Ok();
}

void ChangeBuffer::DropSubtransaction(uint32_t subxid) {
  size_t before = changes_.size();
  std::erase_if(changes_, [&](const Change& c) { return c.subxid == subxid; });
  count_ -= before - changes_.size();
  if (file_) dropped_subxids_.insert(subxid);
}

Status ChangeBuffer::Spill() {
  int fd = ::open(spill_dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status::Error(fmt::format(
        "cdc: cannot create a spill file in {} for a large transaction: {} (set cdc.spill_dir)",
        spill_dir_, std::strerror(errno)));
  }
  std::FILE* f = ::fdopen(fd, "w+b");
  if (!f) {
    ::close(fd);
    return Status::Error(fmt::format("cdc: fdopen of a spill file: {}", std::strerror(errno)));
  }
  file_.reset(f);
  std::setvbuf(f, nullptr, _IOFBF, kFileBufferBytes);
  for (const auto& c : changes_) {
    if (Status s = Write(c); !s.ok()) return s;
  }
  changes_.clear();
  changes_.shrink_to_fit();
  memory_bytes_ = 0;
  return Status::Ok();
}

Status ChangeBuffer::Write(const Change& c) {
  std::FILE* f = file_.get();
  bool ok = Put<char>(f, c.op) && Put<uint32_t>(f, RelationIndex(c.relation)) &&
            Put<uint32_t>(f, c.subxid) && Put<uint32_t>(f, static_cast<uint32_t>(c.tuple.size()));
  for (size_t i = 0; ok && i < c.tuple.size(); ++i) {
    const ColumnValue& v = c.tuple[i];
    ok = Put<char>(f, static_cast<char>(v.kind)) &&
         Put<uint32_t>(f, static_cast<uint32_t>(v.data.size())) &&
         (v.data.empty() || std::fwrite(v.data.data(), v.data.size(), 1, f) == 1);
  }
  if (!ok) {
    return Status::Error(
        fmt::format("cdc: writing a spill file in {}: {}", spill_dir_, std::strerror(errno)));
  }
  return Status::Ok();
}

Status ChangeBuffer::ForEach(const std::function<Status(const Change&)>& change) {
  if (!file_) {
    for (const auto& c : changes_) {
      if (Status s = change(c); !s.ok()) return s;
    }
    return Status::Ok();
  }
  std::FILE* f = file_.get();
  if (std::fflush(f) != 0 || std::fseek(f, 0, SEEK_SET) != 0) {
    return Status::Error(fmt::format("cdc: rereading a spill file: {}", std::strerror(errno)));
  }
  auto corrupt = [&] {
    return Status::Error(fmt::format("cdc: a spill file in {} could not be read back: {}",
                                     spill_dir_, std::ferror(f) ? std::strerror(errno) : "short"));
  };
  Change c;
  while (true) {
    char op;
    if (!Get(f, &op)) {
      if (std::feof(f)) return Status::Ok();
      return corrupt();
    }
    uint32_t relation = 0, columns = 0;
    if (!Get(f, &relation) || !Get(f, &c.subxid) || !Get(f, &columns) ||
        relation >= relations_.size()) {
      return corrupt();
    }
    c.op = op;
    c.relation = relations_[relation];
    c.tuple.resize(columns);
    for (auto& v : c.tuple) {
      char kind;
      uint32_t length = 0;
      if (!Get(f, &kind) || !Get(f, &length)) return corrupt();
      v.kind = static_cast<ColumnValue::Kind>(kind);
      v.data.resize(length);
      if (length && std::fread(v.data.data(), length, 1, f) != 1) return corrupt();
    }
    if (dropped_subxids_.count(c.subxid)) continue;
    if (Status s = change(c); !s.ok()) return s;
  }
}

}  // namespace pdv::cdc
