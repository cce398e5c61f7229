#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "localsvc/child_process.h"
#include "localsvc/scratch_dir.h"

namespace pdv::localsvc {

struct LocalPostgresOptions {
  // Where the cluster lives and stays (data in <dir>/data). Unset: a scratch directory
  // under the temp dir, removed when the server stops (tests, benchmarks).
  std::optional<std::filesystem::path> dir;
  int port = 0;  // 0: a free loopback port
  // Also listen on this address (besides 127.0.0.1) and admit password connections from
  // the networks it is on, and put it in Url(): a server on a host of its own (a network
  // namespace). Empty: loopback only.
  std::string host;
  // fsync and full-page writes on (a cluster that must survive a machine crash).
  bool durable = false;
  // Extra "name=value" server settings.
  std::vector<std::string> settings;
  // The superuser's password. Unset: a random one. Every connection, local socket
  // included, must give it (SCRAM-SHA-256 only in pg_hba.conf): no server of ours trusts
  // a local user.
  std::optional<std::string> password;
  // A streaming-replication standby of the LocalPostgres on 127.0.0.1:<standby_of>, made
  // with pg_basebackup (its superuser password is `password`, which must be given). It is
  // read-only until promoted (SELECT pg_promote()).
  std::optional<int> standby_of;
  // A cluster of its own (initdb here, not a copy of the shared template): its system
  // identifier differs from every other instance's, as a separate server's would.
  bool own_initdb = false;
};

// A PostgreSQL server of our own on 127.0.0.1, with logical replication enabled
// (wal_level=logical, replication slots and WAL senders), password authentication only.
// As root it runs as the 'postgres' account. The server dies with the thread that started it
// (parent-death signal), so a crashed test leaves nothing running. Not thread-safe.
class LocalPostgres {
 public:
  // Creates the cluster if needed (from a cached initdb template, about a second the
  // first time) and starts it; returns when it accepts connections.
  static Result<std::unique_ptr<LocalPostgres>> Start(LocalPostgresOptions options);
  ~LocalPostgres();

  // libpq URL of `database` as the superuser "postgres", with its password.
  std::string Url(const std::string& database = "postgres") const;
  // The same for another role.
  std::string UrlAs(const std::string& user, const std::string& password,
                    const std::string& database) const;
  const std::string& password() const { return password_; }
  // The address clients use: `host`, else 127.0.0.1.
  std::string Address() const { return options_.host.empty() ? "127.0.0.1" : options_.host; }
  int port() const { return port_; }
  const std::filesystem::path& dir() const { return dir_; }

  Status CreateDatabase(const std::string& name);
  // Creates `name` unless it exists.
  Status EnsureDatabase(const std::string& name);
  // Fast shutdown (in-flight transactions are rolled back), waiting for it to finish.
  Status Stop();
  // Starts it again after Stop, on the same port.
  Status Restart();

 private:
  LocalPostgres() = default;
  Status Launch();
  Status RequirePasswords();

  LocalPostgresOptions options_;
  std::string password_;
  std::optional<ScratchDir> scratch_;
  std::filesystem::path dir_;
  std::optional<RunAs> run_as_;
  std::optional<ChildProcess> server_;
  int port_ = 0;
};

}  // namespace pdv::localsvc
