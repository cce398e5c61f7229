// See change_buffer.h. The file's format is private to one process: per change, op (1
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

ChangeBuffer::ChangeBuffer(std::string spill_dir) : spill_dir_(std::move(spill_dir)) {}

uint32_t ChangeBuffer::RelationIndex(const std::shared_ptr<const Relation>& relation) {
  auto it = std::find(relations_.begin(), relations_.end(), relation);
  if (it != relations_.end()) return static_cast<uint32_t>(it - relations_.begin());
  relations_.push_back(relation);
  return static_cast<uint32_t>(relations_.size() - 1);
}

Status ChangeBuffer::Open() {
  int fd = ::open(spill_dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status::Error(
        fmt::format("cdc: cannot create a spill file in {} for a streamed transaction: {} (set "
                    "cdc.spill_dir)",
                    spill_dir_, std::strerror(errno)));
  }
  std::FILE* f = ::fdopen(fd, "w+b");
  if (!f) {
    ::close(fd);
    return Status::Error(fmt::format("cdc: fdopen of a spill file: {}", std::strerror(errno)));
  }
  file_.reset(f);
  std::setvbuf(f, nullptr, _IOFBF, kFileBufferBytes);
  return Status::Ok();
}

Status ChangeBuffer::Add(const Change& c) {
  if (!file_) {
    if (Status s = Open(); !s.ok()) return s;
  }
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
  if (!file_) return Status::Ok();
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
