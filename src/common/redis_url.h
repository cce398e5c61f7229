#pragma once

// The one parser of redis:// and rediss:// URLs: configuration checks them with it, and
// both Redis clients (src/redis/) connect with what it gives. In namespace pdv::redis,
// beside them; here because the configuration (common) cannot depend on src/redis/.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace pdv::redis {

struct Endpoint {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
  std::string user;  // an ACL user; empty: the default user
  std::string password;
  bool tls = false;     // rediss://
  std::string ca_cert;  // ?ca_cert=PATH: the CA that signs the server (else the system's)
  // redis+cluster:// (rediss+cluster://): a Redis Cluster, reached first through any of
  // `seeds` (host and port are the first of them).
  bool cluster = false;
  std::vector<std::pair<std::string, int>> seeds;
  // redis+sentinel:// (rediss+sentinel://): the primary that the Sentinels in `seeds`
  // name `sentinel_master`; `sentinel_password` (?sentinel_password=) authenticates to
  // them.
  std::string sentinel_master;
  std::string sentinel_password;
  bool sentinel() const { return !sentinel_master.empty(); }
};
// redis[s]://[[user]:password@]host[:port][/db][?ca_cert=PATH]. User and password are
// percent-decoded. rediss:// speaks TLS (1.2 or later) and verifies the server's
// certificate and name. redis[s]+cluster://[[user]:password@]host:port,host:port...
// names a Redis Cluster by seed nodes (database 0 only).
// redis[s]+sentinel://[[user]:password@]host:port,host:port/MASTER[?sentinel_password=P]
// names the primary a set of Sentinels monitors as MASTER.
pdv::Result<Endpoint> ParseRedisUrl(std::string_view url);
}  // namespace pdv::redis
