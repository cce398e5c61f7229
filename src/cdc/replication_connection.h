#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "cdc/pgoutput.h"
#include "common/status.h"

namespace pdv::cdc {

struct SlotCreated {
  Lsn consistent_point = 0;
  std::string snapshot_name;  // valid while this connection stays open and idle
};

// A libpq connection in logical replication mode (replication=database): slot commands
// and the streaming protocol. Move-only, not thread-safe. Errors carry SQLSTATE codes
// like pg::Connection's (pg::kConnectionLost when the connection is gone).
class ReplicationConnection {
 public:
  // `options` are extra server settings for the walsender ("-c logical_decoding_work_mem=64kB").
  static pdv::Result<ReplicationConnection> Connect(const std::string& url,
                                                    const std::string& options);

  // CREATE_REPLICATION_SLOT ... LOGICAL pgoutput, exporting its snapshot. A `temporary`
  // slot lasts as long as this connection (a snapshot to read, not a stream).
  pdv::Result<SlotCreated> CreateSlot(const std::string& slot, bool temporary = false);
  // TIMELINE_HISTORY: the history file of `timeline` (where each ancestor timeline ended;
  // timeline_history.h reads it).
  pdv::Result<std::string> TimelineHistory(int timeline);
  // IDENTIFY_SYSTEM: the source cluster's system identifier and current timeline (a
  // promoted standby keeps the identifier and is on a new timeline).
  struct SystemIdentity {
    std::string system_id;
    int timeline = 0;
  };
  pdv::Result<SystemIdentity> IdentifySystem();
  // START_REPLICATION from `start` with pgoutput protocol 2, large transactions streamed
  // before their commit when `streaming`.
  Status Start(const std::string& slot, Lsn start, const std::string& publication, bool streaming);
  // The next CopyData message, nullopt after `timeout` with nothing to read. An error when
  // the stream ends or the connection fails.
  // (Microseconds: a batch closes a few ms after its first change, and a wait rounded
  // down to whole milliseconds made the caller spin through the last one.)
  pdv::Result<std::optional<std::string>> Receive(std::chrono::microseconds timeout);
  // Standby status update: everything up to `flush` is durable on our side.
  Status SendStatus(Lsn received, Lsn flush, bool reply_requested);

 private:
  struct Finish {
    void operator()(PGconn* c) const { PQfinish(c); }
  };
  explicit ReplicationConnection(PGconn* conn) : conn_(conn) {}
  Status Error(std::string_view what, const PGresult* res);
  std::unique_ptr<PGconn, Finish> conn_;
};

}  // namespace pdv::cdc
