#include "cdc/warehouse_durability.h"

namespace pdv::cdc {

pdv::Result<CommitDurability> ReadCommitDurability(pg::Connection& warehouse) {
  auto r = warehouse.Exec(
      "SELECT current_setting('synchronous_commit'), "
      "current_setting('synchronous_standby_names'), "
      // A role without pg_read_all_stats sees each walsender's row but not its state.
      "(SELECT count(*) FROM pg_stat_replication WHERE state IS NULL OR state = 'streaming')");
  if (!r.ok()) return r.status();
  CommitDurability d{.standbys = std::stoi(r->str(0, 2)),
                     .synchronous_commit = r->str(0, 0),
                     .synchronous_standby_names = r->str(0, 1)};
  // remote_write: on the standby's OS, not yet its disk; that survives the primary's crash.
  d.synchronous = !d.synchronous_standby_names.empty() && d.synchronous_commit != "off" &&
                  d.synchronous_commit != "local";
  return d;
}

Status WarnUnlessCommitsAreSynchronous(pg::Connection& warehouse, Logger& log) {
  auto d = ReadCommitDurability(warehouse);
  if (!d.ok()) return d.status();
  if (d->standbys > 0 && !d->synchronous) {
    log.Warn("cdc_warehouse_not_synchronous",
             {{"standbys", d->standbys},
              {"synchronous_commit", d->synchronous_commit},
              {"synchronous_standby_names", d->synchronous_standby_names},
              {"note",
               "the warehouse has standbys but its commits do not wait for one: a failover may "
               "lose RAW batches whose positions cdc already confirmed to the source, which "
               "will not resend them (recovery: pdv cdc --resync). Under Patroni set "
               "synchronous_mode: true (and synchronous_mode_strict) in the DCS configuration"}});
  }
  return Status::Ok();
}

}  // namespace pdv::cdc
