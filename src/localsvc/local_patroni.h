#pragma once

// A PostgreSQL cluster managed by Patroni (Debian's patroni 3.0), on loopback: N nodes of
// our own, each a Patroni process running PostgreSQL 15, their leader key in an etcd
// (local_etcd.h). For the high-availability tests: a leader and streaming replicas,
// permanent logical slots copied to every replica, a node killed as a host crash would.

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "localsvc/child_process.h"
#include "localsvc/scratch_dir.h"

namespace pdv::localsvc {

struct LocalPatroniOptions {
  std::string etcd_endpoint;  // "127.0.0.1:port" (LocalEtcd::Endpoint)
  int nodes = 3;
  // The cluster's name in the DCS (Patroni's `scope`); unique per etcd. "": one of ours.
  std::string scope;
  // Patroni's leader key lives this long (s) without renewal before a replica takes over:
  // the failover time after a crash. Patroni needs loop_wait + 2 * retry_timeout <= ttl.
  int ttl_s = 10;
  // Patroni's synchronous_mode: a commit returns once a synchronous standby has it, and
  // only that standby may be promoted (the warehouse's HA, issue 34 item 2).
  bool synchronous_mode = false;
  // Extra PostgreSQL parameters ("name", "value") for every node, in the DCS config.
  std::vector<std::pair<std::string, std::string>> parameters;
};

// One Patroni member as the REST API's /cluster lists it.
struct PatroniMember {
  std::string name;  // node<i>
  std::string role;  // "leader", "replica", "sync_standby"
  std::string
      state;     // "running", "starting", ... (Patroni 3.0 says "running" for a streaming replica)
  int port = 0;  // its PostgreSQL's
  int timeline = 0;
};

// The cluster and its nodes; stops them (Patroni stops its PostgreSQL) when destroyed, and
// every node dies with the thread that started it (parent-death signal). Superuser
// "postgres" with a random password; SCRAM-only pg_hba.conf, as LocalPostgres. The REST
// APIs listen on loopback only and need no credentials: test clusters only. Not
// thread-safe.
class LocalPatroniCluster {
 public:
  // Starts every node and returns once one is the leader and the others are streaming
  // replicas (WaitForReplicas), about 20 s.
  static Result<std::unique_ptr<LocalPatroniCluster>> Start(LocalPatroniOptions options);
  ~LocalPatroniCluster();

  int size() const { return static_cast<int>(nodes_.size()); }
  const std::string& password() const { return password_; }
  int pg_port(int node) const { return nodes_[node].pg_port; }
  int rest_port(int node) const { return nodes_[node].rest_port; }
  // Every node, in order: postgresql://postgres:<pw>@127.0.0.1:p0,...,127.0.0.1:pN/<db>
  // ?target_session_attrs=read-write: libpq connects to whichever is the primary.
  std::string MultiHostUrl(const std::string& database) const;
  // One node's PostgreSQL, whatever its role.
  std::string NodeUrl(int node, const std::string& database) const;

  // The members, as a live node's REST API (/cluster) lists them.
  Result<std::vector<PatroniMember>> Members() const;
  // Waits until a node other than `except` (-1: any) is the primary: it holds the leader
  // key (its /primary answers 200) and its PostgreSQL accepts a read-write session; its
  // index.
  Result<int> WaitForLeader(std::chrono::milliseconds timeout, int except = -1) const;
  // Waits until `count` members are replicas that stream from the leader.
  Status WaitForReplicas(int count, std::chrono::milliseconds timeout) const;

  // Declares `slot` a permanent logical slot (pgoutput) of `database` in the DCS
  // configuration (PATCH /config): the leader keeps it, every replica keeps a copy that
  // Patroni advances, so that it still exists after a failover.
  Status SetPermanentSlot(const std::string& slot, const std::string& database);
  // Waits until every live replica says its copy of `slot` is safe to use after a
  // failover (Patroni's log: it holds the catalog rows the slot needs).
  Status WaitForSlotOnReplicas(const std::string& slot, std::chrono::milliseconds timeout) const;

  // Replication lag on demand: SIGSTOP to a replica's walreceiver (WAL the primary sends
  // then waits in the socket), and SIGKILL to it (what waited is gone: after the primary's
  // crash, the replica has only what it received before the stop; PostgreSQL restarts).
  Status StopWalReceiver(int node);
  void KillWalReceiver(int node);
  // A host crash: SIGKILL to the node's Patroni and to its PostgreSQL's every process.
  void KillNode(int node);
  bool alive(int node) const { return !nodes_[node].killed; }

 private:
  struct Node {
    std::filesystem::path dir;
    int pg_port = 0, rest_port = 0;
    std::optional<ChildProcess> patroni;
    bool killed = false;
  };
  LocalPatroniCluster() = default;
  Status StartNode(int index);
  // A connection to the node's PostgreSQL is out of recovery (read-write).
  bool AcceptsWrites(int node) const;
  std::string Config(int index) const;

  LocalPatroniOptions options_;
  std::string password_, replication_password_;
  std::optional<ScratchDir> scratch_;
  std::filesystem::path dir_;
  std::optional<RunAs> run_as_;
  std::vector<Node> nodes_;
};

}  // namespace pdv::localsvc
