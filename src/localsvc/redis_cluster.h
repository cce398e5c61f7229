#pragma once

// A Redis Cluster of our own servers: formed with Debian's redis-cli from running
// cluster-enabled nodes (LocalRedisOptions::cluster), for tests, benchmarks and the
// multi-host harness.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "localsvc/local_redis.h"

namespace pdv::localsvc {

// `redis-cli -h host -p port <command...>` against node "host:port", the password given
// on stdin (--askpass), never on a command line: its output ("" if it could not run).
std::string RedisCliOutput(const std::string& node, const std::string& password,
                           const std::vector<std::string>& command);

// `redis-cli --cluster create` of six (or more) running nodes, one replica per master;
// returns once the cluster is ready (WaitForRedisCluster).
Status FormRedisCluster(const std::vector<std::string>& nodes, const std::string& password,
                        std::chrono::seconds timeout);

// Until every node says cluster_state:ok and every replica's link to its master is up (a
// replica that never synced cannot be promoted).
Status WaitForRedisCluster(const std::vector<std::string>& nodes, const std::string& password,
                           std::chrono::milliseconds timeout);

// Six nodes on free loopback ports below 55536 (the cluster bus is on port + 10000):
// three masters, three replicas, every node's default user with `password`.
class LocalRedisCluster {
 public:
  static Result<std::unique_ptr<LocalRedisCluster>> Start(const std::string& password);
  // redis+cluster://default:<password>@<two seed nodes>
  std::string Url() const;
  // "127.0.0.1:port" of each node.
  std::vector<std::string> Addresses() const;
  const std::vector<std::unique_ptr<LocalRedis>>& nodes() const { return nodes_; }
  const std::string& password() const { return password_; }

 private:
  std::vector<std::unique_ptr<LocalRedis>> nodes_;
  std::string password_;
};

}  // namespace pdv::localsvc
