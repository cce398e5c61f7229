#include "cdc/pgoutput.h"

#include <fmt/format.h>

namespace pdv::cdc {
namespace {

// Bounds-checked big-endian reader over one message. The first failure sticks, and
// names the message and the offset where the data ran out or went wrong.
class Reader {
 public:
  Reader(std::string_view data, const char* what) : data_(data), what_(what) {}

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  size_t offset() const { return pos_; }
  bool at_end() const { return pos_ == data_.size(); }

  uint64_t Int(int bytes) {
    if (!Need(static_cast<size_t>(bytes), "integer")) return 0;
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(data_[pos_++]);
    return v;
  }
  uint8_t U8() { return static_cast<uint8_t>(Int(1)); }
  int16_t I16() { return static_cast<int16_t>(Int(2)); }
  uint32_t U32() { return static_cast<uint32_t>(Int(4)); }
  int32_t I32() { return static_cast<int32_t>(Int(4)); }
  uint64_t U64() { return Int(8); }
  int64_t I64() { return static_cast<int64_t>(Int(8)); }

  // A NUL-terminated string.
  std::string CString() {
    if (!ok()) return {};
    size_t end = data_.find('\0', pos_);
    if (end == std::string_view::npos) {
      Fail("unterminated string");
      return {};
    }
    std::string s(data_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return s;
  }
  std::string Bytes(size_t n) {
    if (!Need(n, "bytes")) return {};
    std::string s(data_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  std::string_view Rest() {
    std::string_view s = ok() ? data_.substr(pos_) : std::string_view();
    pos_ = data_.size();
    return s;
  }

  void Fail(std::string_view why) {
    if (ok()) {
      error_ = fmt::format("pgoutput: malformed {} message at offset {} of {}: {}", what_, pos_,
                           data_.size(), why);
    }
  }

 private:
  bool Need(size_t n, const char* what) {
    if (!ok()) return false;
    if (data_.size() - pos_ < n) {
      error_ =
          fmt::format("pgoutput: truncated {} message at offset {}: {} needs {} bytes, {} left",
                      what_, pos_, what, n, data_.size() - pos_);
      return false;
    }
    return true;
  }

  std::string_view data_;
  const char* what_;
  size_t pos_ = 0;
  std::string error_;
};

Tuple ReadTuple(Reader& r) {
  Tuple tuple;
  int16_t n = r.I16();
  if (n < 0) {
    r.Fail("negative column count");
    return tuple;
  }
  tuple.reserve(static_cast<size_t>(n));
  for (int16_t i = 0; i < n && r.ok(); ++i) {
    ColumnValue v;
    char kind = static_cast<char>(r.U8());
    if (!r.ok()) break;
    switch (kind) {
      case 'n':
        v.kind = ColumnValue::Kind::kNull;
        break;
      case 'u':
        v.kind = ColumnValue::Kind::kUnchangedToast;
        break;
      case 't':
      case 'b': {
        v.kind = kind == 't' ? ColumnValue::Kind::kText : ColumnValue::Kind::kBinary;
        int32_t len = r.I32();
        if (len < 0) {
          r.Fail(fmt::format("column {} has negative length {}", i + 1, len));
          break;
        }
        v.data = r.Bytes(static_cast<size_t>(len));
        break;
      }
      default:
        r.Fail(fmt::format("column {} has unknown kind 0x{:02x}", i + 1,
                           static_cast<unsigned char>(kind)));
    }
    tuple.push_back(std::move(v));
  }
  return tuple;
}

// Commit and Stream Commit end alike: flags, commit LSN, end LSN, commit time.
template <typename M>
void ReadCommitFields(Reader& r, M* m) {
  m->flags = r.U8();
  m->commit_lsn = r.U64();
  m->end_lsn = r.U64();
  m->commit_time_us = r.I64();
}

}  // namespace

const char* MessageName(char type) {
  switch (type) {
    case 'B':
      return "Begin";
    case 'C':
      return "Commit";
    case 'O':
      return "Origin";
    case 'R':
      return "Relation";
    case 'Y':
      return "Type";
    case 'I':
      return "Insert";
    case 'U':
      return "Update";
    case 'D':
      return "Delete";
    case 'T':
      return "Truncate";
    case 'M':
      return "Message";
    case 'S':
      return "Stream Start";
    case 'E':
      return "Stream Stop";
    case 'c':
      return "Stream Commit";
    case 'A':
      return "Stream Abort";
    default:
      return "unknown";
  }
}

pdv::Result<Message> PgOutputDecoder::Decode(std::string_view data) {
  if (data.empty()) return Status::Error("pgoutput: empty message at offset 0");
  char type = data[0];
  Reader r(data, MessageName(type));
  r.U8();
  // Inside a streamed block, change messages start with their transaction id.
  auto stream_xid = [&] { return in_stream_ ? r.U32() : 0u; };
  Message out;
  switch (type) {
    case 'B': {
      BeginMessage m;
      m.final_lsn = r.U64();
      m.commit_time_us = r.I64();
      m.xid = r.U32();
      out = m;
      break;
    }
    case 'C': {
      CommitMessage m;
      ReadCommitFields(r, &m);
      out = m;
      break;
    }
    case 'O': {
      OriginMessage m;
      m.commit_lsn = r.U64();
      m.name = r.CString();
      out = m;
      break;
    }
    case 'R': {
      RelationMessage m;
      m.xid = stream_xid();
      m.relation_id = r.U32();
      m.ns = r.CString();
      m.name = r.CString();
      m.replica_identity = static_cast<char>(r.U8());
      int16_t n = r.I16();
      if (n < 0) r.Fail("negative column count");
      for (int16_t i = 0; i < n && r.ok(); ++i) {
        RelationColumn c;
        c.key = (r.U8() & 1) != 0;
        c.name = r.CString();
        c.type_oid = r.U32();
        c.type_modifier = r.I32();
        m.columns.push_back(std::move(c));
      }
      out = std::move(m);
      break;
    }
    case 'Y': {
      TypeMessage m;
      m.xid = stream_xid();
      m.type_oid = r.U32();
      m.ns = r.CString();
      m.name = r.CString();
      out = std::move(m);
      break;
    }
    case 'I': {
      InsertMessage m;
      m.xid = stream_xid();
      m.relation_id = r.U32();
      if (r.ok() && r.U8() != 'N' && r.ok()) r.Fail("expected 'N' before the new tuple");
      m.new_tuple = ReadTuple(r);
      out = std::move(m);
      break;
    }
    case 'U': {
      UpdateMessage m;
      m.xid = stream_xid();
      m.relation_id = r.U32();
      char next = static_cast<char>(r.U8());
      if (r.ok() && (next == 'K' || next == 'O')) {
        m.old_kind = next;
        m.old_tuple = ReadTuple(r);
        next = static_cast<char>(r.U8());
      }
      if (r.ok() && next != 'N') r.Fail("expected 'N' before the new tuple");
      m.new_tuple = ReadTuple(r);
      out = std::move(m);
      break;
    }
    case 'D': {
      DeleteMessage m;
      m.xid = stream_xid();
      m.relation_id = r.U32();
      m.old_kind = static_cast<char>(r.U8());
      if (r.ok() && m.old_kind != 'K' && m.old_kind != 'O') {
        r.Fail("expected 'K' or 'O' before the old tuple");
      }
      m.old_tuple = ReadTuple(r);
      out = std::move(m);
      break;
    }
    case 'T': {
      TruncateMessage m;
      m.xid = stream_xid();
      int32_t n = r.I32();
      m.options = r.U8();
      if (n < 0) r.Fail("negative relation count");
      for (int32_t i = 0; i < n && r.ok(); ++i) m.relation_ids.push_back(r.U32());
      out = std::move(m);
      break;
    }
    case 'M': {
      LogicalMessage m;
      m.xid = stream_xid();
      m.transactional = (r.U8() & 1) != 0;
      m.lsn = r.U64();
      m.prefix = r.CString();
      int32_t len = r.I32();
      if (len < 0) r.Fail("negative content length");
      m.content = r.Bytes(static_cast<size_t>(std::max(len, 0)));
      out = std::move(m);
      break;
    }
    case 'S': {
      if (in_stream_) r.Fail("Stream Start inside a streamed block");
      StreamStartMessage m;
      m.xid = r.U32();
      m.first_segment = r.U8() == 1;
      if (r.ok()) in_stream_ = true;
      out = m;
      break;
    }
    case 'E': {
      if (!in_stream_) r.Fail("Stream Stop outside a streamed block");
      if (r.ok()) in_stream_ = false;
      out = StreamStopMessage{};
      break;
    }
    case 'c': {
      StreamCommitMessage m;
      m.xid = r.U32();
      ReadCommitFields(r, &m);
      out = m;
      break;
    }
    case 'A': {
      StreamAbortMessage m;
      m.xid = r.U32();
      m.subxid = r.U32();
      // PostgreSQL 16 with parallel streaming appends the abort LSN and time.
      if (r.ok() && !r.at_end()) {
        r.U64();
        r.I64();
      }
      out = m;
      break;
    }
    default:
      return Status::Error(fmt::format("pgoutput: unknown message type 0x{:02x} at offset 0",
                                       static_cast<unsigned char>(type)));
  }
  if (r.ok() && !r.at_end()) r.Fail("trailing bytes");
  if (!r.ok()) return Status::Error(r.error());
  return out;
}

pdv::Result<CopyDataMessage> DecodeCopyData(std::string_view data) {
  if (data.empty()) return Status::Error("replication: empty CopyData message");
  if (data[0] == 'w') {
    Reader r(data, "XLogData");
    r.U8();
    XLogData m;
    m.wal_start = r.U64();
    m.wal_end = r.U64();
    m.send_time_us = r.I64();
    m.payload = r.Rest();
    if (!r.ok()) return Status::Error(r.error());
    return CopyDataMessage(m);
  }
  if (data[0] == 'k') {
    Reader r(data, "Primary keepalive");
    r.U8();
    PrimaryKeepalive m;
    m.wal_end = r.U64();
    m.send_time_us = r.I64();
    m.reply_requested = r.U8() == 1;
    if (r.ok() && !r.at_end()) r.Fail("trailing bytes");
    if (!r.ok()) return Status::Error(r.error());
    return CopyDataMessage(m);
  }
  return Status::Error(fmt::format("replication: unknown CopyData message type 0x{:02x}",
                                   static_cast<unsigned char>(data[0])));
}

std::string EncodeStandbyStatus(Lsn write, Lsn flush, Lsn apply, int64_t now_us,
                                bool reply_requested) {
  std::string out = "r";
  auto put = [&](uint64_t v) {
    for (int s = 56; s >= 0; s -= 8) out.push_back(static_cast<char>(v >> s));
  };
  put(write);
  put(flush);
  put(apply);
  put(static_cast<uint64_t>(now_us));
  out.push_back(reply_requested ? 1 : 0);
  return out;
}

}  // namespace pdv::cdc
