#pragma once

// The stream reader: pgoutput messages (the payload of each XLogData) into changes. It
// keeps the relations and SQL types the source described, the transaction being received
// whole (its rows go into the RAW batch as they arrive), and streamed transactions until
// their commit (StreamedTransactions), and hands every change of the target table to the
// RawWriter. Internal to src/cdc/.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "cdc/cdc.h"
#include "cdc/change.h"
#include "cdc/pgoutput.h"
#include "cdc/raw_writer.h"
#include "cdc/streamed_transactions.h"
#include "common/status.h"
#include "pg/connection.h"

namespace pdv::cdc {

// Borrows the options, the session's source connection (for format_type) and its
// writer, which outlive it. Not thread-safe (the session's thread).
class StreamReader {
 public:
  StreamReader(const CdcOptions& options, pg::Connection& source, RawWriter& writer)
      : options_(options), source_(source), writer_(writer), streamed_(options.spill_dir) {}

  // One XLogData message. Fails on a malformed or out-of-order message (the message
  // names the WAL position), on the source's error, or on the writer's.
  Status Apply(const XLogData& x);
  // Between a Begin and its Commit: the RAW batch must not close now.
  bool in_transaction() const { return open_.has_value(); }
  // Streamed transactions not committed or aborted yet.
  bool streamed_pending() const { return !streamed_.empty(); }

 private:
  pdv::Result<std::string> SqlType(uint32_t oid, int32_t typmod);
  Status AddChange(uint32_t xid, uint32_t relation_id, char op, Tuple tuple);
  Status ApplyStreamed(ChangeBuffer& txn, Lsn commit_lsn, Lsn end_lsn, int64_t commit_time_pg_us);

  Status On(const BeginMessage& m);
  Status On(const CommitMessage& m);
  Status On(const StreamStartMessage& m);
  Status On(const StreamStopMessage&) { return Status::Ok(); }
  Status On(const StreamCommitMessage& m);
  Status On(const StreamAbortMessage& m);
  Status On(const RelationMessage& m);
  Status On(const TypeMessage&) { return Status::Ok(); }
  Status On(const OriginMessage&) { return Status::Ok(); }
  Status On(const LogicalMessage&) { return Status::Ok(); }
  Status On(InsertMessage& m);
  Status On(UpdateMessage& m);
  Status On(DeleteMessage& m);
  Status On(TruncateMessage& m);
  template <typename T>
  Status On(const T&) = delete;

  const CdcOptions& options_;
  pg::Connection& source_;
  RawWriter& writer_;
  PgOutputDecoder decoder_;
  std::map<std::pair<uint32_t, int32_t>, std::string> types_;
  std::map<uint32_t, std::shared_ptr<const Relation>> relations_;
  // The transaction being received whole (between Begin and Commit).
  struct OpenTransaction {
    Lsn commit_lsn = 0;
    int64_t committed_us = 0;  // Unix µs
    int64_t seq = 0;           // rows added so far
    bool skip = false;         // at or below the checkpoint: already in RAW
  };
  std::optional<OpenTransaction> open_;
  StreamedTransactions streamed_;
};

}  // namespace pdv::cdc
