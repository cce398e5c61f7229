#pragma once

// Decoder of PostgreSQL's logical replication protocol (the pgoutput plugin, protocol
// versions 1 and 2 with streamed transactions), and of the replication CopyData
// envelope around it. Pure functions of their input: no I/O, no allocation beyond the
// returned values.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/lsn.h"
#include "common/status.h"

namespace pdv::cdc {

using Lsn = uint64_t;

using pdv::LsnText;
using pdv::ParseLsn;

// One column value of a tuple.
struct ColumnValue {
  enum class Kind : char { kNull = 'n', kUnchangedToast = 'u', kText = 't', kBinary = 'b' };
  Kind kind = Kind::kNull;
  std::string data;  // for kText / kBinary
};
using Tuple = std::vector<ColumnValue>;

struct BeginMessage {
  Lsn final_lsn = 0;
  int64_t commit_time_us = 0;  // µs since 2000-01-01 (PostgreSQL epoch)
  uint32_t xid = 0;
};
struct CommitMessage {
  uint8_t flags = 0;
  Lsn commit_lsn = 0;
  Lsn end_lsn = 0;
  int64_t commit_time_us = 0;
};
struct OriginMessage {
  Lsn commit_lsn = 0;
  std::string name;
};
struct RelationColumn {
  bool key = false;
  std::string name;
  uint32_t type_oid = 0;
  int32_t type_modifier = -1;
};
struct RelationMessage {
  uint32_t xid = 0;  // streamed transactions only
  uint32_t relation_id = 0;
  std::string ns;
  std::string name;
  char replica_identity = 'd';
  std::vector<RelationColumn> columns;
};
struct TypeMessage {
  uint32_t xid = 0;
  uint32_t type_oid = 0;
  std::string ns;
  std::string name;
};
struct InsertMessage {
  uint32_t xid = 0;
  uint32_t relation_id = 0;
  Tuple new_tuple;
};
struct UpdateMessage {
  uint32_t xid = 0;
  uint32_t relation_id = 0;
  // 'K' (key columns only), 'O' (whole old row, REPLICA IDENTITY FULL) or 0 (none).
  char old_kind = 0;
  Tuple old_tuple;
  Tuple new_tuple;
};
struct DeleteMessage {
  uint32_t xid = 0;
  uint32_t relation_id = 0;
  char old_kind = 'K';
  Tuple old_tuple;
};
struct TruncateMessage {
  uint32_t xid = 0;
  uint8_t options = 0;  // 1: CASCADE, 2: RESTART IDENTITY
  std::vector<uint32_t> relation_ids;
};
struct LogicalMessage {
  uint32_t xid = 0;
  bool transactional = false;
  Lsn lsn = 0;
  std::string prefix;
  std::string content;
};
struct StreamStartMessage {
  uint32_t xid = 0;
  bool first_segment = false;
};
struct StreamStopMessage {};
struct StreamCommitMessage {
  uint32_t xid = 0;
  uint8_t flags = 0;
  Lsn commit_lsn = 0;
  Lsn end_lsn = 0;
  int64_t commit_time_us = 0;
};
struct StreamAbortMessage {
  uint32_t xid = 0;
  uint32_t subxid = 0;
};

using Message =
    std::variant<BeginMessage, CommitMessage, OriginMessage, RelationMessage, TypeMessage,
                 InsertMessage, UpdateMessage, DeleteMessage, TruncateMessage, LogicalMessage,
                 StreamStartMessage, StreamStopMessage, StreamCommitMessage, StreamAbortMessage>;

// Decodes pgoutput messages in order. The only state is whether we are inside a
// streamed-transaction block (between Stream Start and Stream Stop), where change
// messages carry their transaction id. A malformed or truncated message is an error
// naming the message and the byte offset; it never reads out of bounds. Not
// thread-safe; one per replication stream.
class PgOutputDecoder {
 public:
  pdv::Result<Message> Decode(std::string_view data);
  bool in_stream() const { return in_stream_; }

 private:
  bool in_stream_ = false;
};

// The replication protocol's CopyData envelope.
struct XLogData {
  Lsn wal_start = 0;  // the WAL position of this message
  Lsn wal_end = 0;    // the server's current end of WAL
  int64_t send_time_us = 0;
  std::string_view payload;  // points into the decoded buffer
};
struct PrimaryKeepalive {
  Lsn wal_end = 0;
  int64_t send_time_us = 0;
  bool reply_requested = false;
};
using CopyDataMessage = std::variant<XLogData, PrimaryKeepalive>;

pdv::Result<CopyDataMessage> DecodeCopyData(std::string_view data);

// The standby status update ('r') acknowledging `flush` (written and flushed up to it).
std::string EncodeStandbyStatus(Lsn write, Lsn flush, Lsn apply, int64_t now_us,
                                bool reply_requested);

// Name of a message type for errors and logs ("Insert").
const char* MessageName(char type);

}  // namespace pdv::cdc
