#pragma once

// Whether a warehouse commit is on a standby before it returns. cdc confirms a position to
// the source once its batch committed in the warehouse (the source then never resends
// it): when a failover may promote a standby that lacks the batch, that batch is lost for
// good unless commits waited for a synchronous standby (Patroni's synchronous_mode).
// Internal to src/cdc/.

#include <string>

#include "common/log.h"
#include "common/status.h"
#include "pg/connection.h"

namespace pdv::cdc {

struct CommitDurability {
  int standbys = 0;          // streaming standbys now (pg_stat_replication)
  bool synchronous = false;  // synchronous_standby_names set and synchronous_commit waits
  std::string synchronous_commit, synchronous_standby_names;
};

pdv::Result<CommitDurability> ReadCommitDurability(pg::Connection& warehouse);

// Logs cdc_warehouse_not_synchronous (what may be lost, what to configure) when the
// warehouse has standbys but its commits do not wait for one. Said, not refused: an
// operator without HA, or who accepts the risk, streams on.
Status WarnUnlessCommitsAreSynchronous(pg::Connection& warehouse, Logger& log);

}  // namespace pdv::cdc
