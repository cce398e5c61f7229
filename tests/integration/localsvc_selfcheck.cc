// Starts a throw-away PostgreSQL and Redis, checks them, and stops them.
// With --hold it prints where they are and waits to be killed: the harness test kills
// it with SIGKILL and checks that the servers died with it.

#include <fmt/format.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "localsvc/local_postgres.h"
#include "localsvc/local_redis.h"

int main(int argc, char** argv) {
  bool hold = argc > 1 && std::strcmp(argv[1], "--hold") == 0;
  auto pg = pdv::localsvc::LocalPostgres::Start({});
  if (!pg.ok()) {
    fmt::print(stderr, "postgres: {}\n", pg.message());
    return 1;
  }
  auto redis = pdv::localsvc::LocalRedis::Start({});
  if (!redis.ok()) {
    fmt::print(stderr, "redis: {}\n", redis.message());
    return 1;
  }
  PGconn* conn = PQconnectdb((*pg)->Url().c_str());
  PGresult* res = PQexec(conn, "SHOW wal_level");
  bool logical =
      PQresultStatus(res) == PGRES_TUPLES_OK && std::string(PQgetvalue(res, 0, 0)) == "logical";
  PQclear(res);
  PQfinish(conn);
  fmt::print("uid={} pg_port={} pg_dir={} redis_port={} wal_level_logical={}\n", ::geteuid(),
             (*pg)->port(), (*pg)->dir().string(), (*redis)->port(), logical);
  std::fflush(stdout);
  if (hold) {
    while (true) ::pause();
  }
  return logical ? 0 : 1;
}
