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

struct LocalRedisOptions {
  // Where the server keeps its files (and, with `persistent`, its data). Unset: a
  // scratch directory removed when it stops.
  std::optional<std::filesystem::path> dir;
  int port = 0;  // 0: a free loopback port
  // Also listen on this address (besides 127.0.0.1), announce it to the cluster, and put it
  // in Url(): a server on a host of its own (a network namespace). Empty: loopback only.
  std::string host;
  bool persistent = false;  // append-only file on, else nothing written to disk
  // The default user's password (requirepass). Unset: a random one.
  std::optional<std::string> password;
  // ACL users besides the default one: name, password and ACL rules
  // ("~pdv:* +get +hget"), as in an ACL file's "user" line.
  struct User {
    std::string name;
    std::string password;
    std::string rules;
  };
  std::vector<User> users;
  // TLS only (no plain port): PEM certificate and key of the server, and the CA that
  // clients verify it with (put in Url() as ca_cert). Paths inside `dir` when running
  // as root (the 'redis' account must read them).
  struct Tls {
    std::string cert, key, ca;
  };
  std::optional<Tls> tls;
  // A Redis Cluster node (cluster-enabled; its replicas authenticate with the default
  // user's password). Its port must be below 55536: the cluster bus listens on port+10000.
  bool cluster = false;
  // A replica of the Redis on 127.0.0.1:<replica_of> (same default password).
  std::optional<int> replica_of;
};

// A redis-server of our own on 127.0.0.1 and `host` (protected mode, a password always), dying with
// the thread that started it. Its settings and passwords are in an owner-only redis.conf,
// never on its command line (which every local user can read). As root it runs as the
// 'redis' account. Not thread-safe.
class LocalRedis {
 public:
  static Result<std::unique_ptr<LocalRedis>> Start(LocalRedisOptions options);
  ~LocalRedis();

  // redis://default:<password>@127.0.0.1:<port>/0 (rediss://...?ca_cert= with TLS)
  std::string Url() const;
  // The URL of one of the ACL users.
  std::string UrlAs(const std::string& user, const std::string& password) const;
  const std::string& password() const { return password_; }
  // The address clients use: `host`, else 127.0.0.1.
  std::string Address() const;
  int port() const { return port_; }
  Status Stop();
  // Starts it again after Stop (or after it was killed), on the same port.
  Status Restart();
  // SIGKILL, for fault tests.
  void Kill();
  // Any signal (SIGSTOP/SIGCONT: a server that hangs, then wakes), for fault tests.
  void Signal(int sig);

 private:
  LocalRedis() = default;
  Status Launch();
  Status WriteConfig() const;

  LocalRedisOptions options_;
  std::string password_;
  std::optional<RunAs> run_as_;
  std::optional<ScratchDir> scratch_;
  std::filesystem::path dir_;
  std::optional<ChildProcess> server_;
  int port_ = 0;
};

}  // namespace pdv::localsvc
