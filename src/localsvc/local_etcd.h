#pragma once

// An etcd server of our own on 127.0.0.1 (Debian's etcd-server 3.4): the distributed
// configuration store a Patroni cluster keeps its leader key in (local_patroni.h).

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"
#include "localsvc/child_process.h"
#include "localsvc/scratch_dir.h"

namespace pdv::localsvc {

struct LocalEtcdOptions {
  // Where its data lives. Unset: a scratch directory, removed when it stops.
  std::optional<std::filesystem::path> dir;
};

// One etcd member on free loopback ports (client and peer), a cluster of one: it holds
// the leader key of the Patroni clusters that use it. As root it runs as the 'etcd'
// account. Dies with the thread that started it (parent-death signal). Not thread-safe.
class LocalEtcd {
 public:
  // Starts it; returns once /health says true.
  static Result<std::unique_ptr<LocalEtcd>> Start(LocalEtcdOptions options = {});
  ~LocalEtcd();

  int client_port() const { return client_port_; }
  // "127.0.0.1:<client port>", as Patroni's etcd3.hosts wants it.
  std::string Endpoint() const;
  const std::filesystem::path& dir() const { return dir_; }

 private:
  LocalEtcd() = default;
  Status Launch();

  std::optional<ScratchDir> scratch_;
  std::filesystem::path dir_;
  std::optional<RunAs> run_as_;
  std::optional<ChildProcess> server_;
  int client_port_ = 0, peer_port_ = 0;
};

}  // namespace pdv::localsvc
