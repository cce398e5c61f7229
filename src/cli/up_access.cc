#include "cli/up_access.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <libpq-fe.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "common/conninfo.h"
#include "common/random_secret.h"
#include "generate/oltp_schema.h"
#include "localsvc/launch_support.h"
#include "monitor/monitor.h"
#include "pg/connection.h"
#include "pg/scram_verifier.h"
#include "redis/client.h"
#include "warehouse/warehouse.h"

namespace pdv::cli {
namespace fs = std::filesystem;

namespace {

constexpr char kGenerateRole[] = "pdv_generate";
constexpr char kCdcRole[] = "pdv_cdc";
constexpr char kTransformRole[] = "pdv_transform";
constexpr char kCacheRole[] = "pdv_cache";
constexpr char kMonitorRole[] = "pdv_monitor";
constexpr char kCacheUser[] = "pdv-cache";
constexpr char kServeUser[] = "pdv-serve";
constexpr char kMonitorUser[] = "pdv-monitor";

struct PgTarget {
  std::string host, port, dbname;
};

Result<PgTarget> ParsePgUrl(const std::string& url) {
  auto parsed = pg::Conninfo::Parse(url);
  if (!parsed.ok()) return Status::Error("not a PostgreSQL URL: " + parsed.message());
  PgTarget t{parsed->Get("host"), parsed->Get("port"), parsed->Get("dbname")};
  if (t.host.empty()) t.host = "127.0.0.1";
  if (t.port.empty()) t.port = "5432";
  return t;
}

// `admin_url`'s server and database as `role`.
Result<std::string> PgUrlAs(const std::string& admin_url, const std::string& role,
                            const std::string& password) {
  auto t = ParsePgUrl(admin_url);
  if (!t.ok()) return t.status();
  return fmt::format("postgresql://{}:{}@{}:{}/{}", role, password, t->host, t->port, t->dbname);
}

Result<std::string> RedisUrlAs(const std::string& admin_url, const std::string& user,
                               const std::string& password) {
  auto e = redis::ParseRedisUrl(admin_url);
  if (!e.ok()) return e.status();
  return fmt::format("redis://{}:{}@{}:{}/{}", user, password, e->host, e->port, e->db);
}

// Creates `role` if missing and (re)sets its attributes and password.
Status EnsureRole(pg::Connection& conn, const std::string& role, const std::string& password,
                  bool replication) {
  std::string quoted = pg::QuoteIdentifier(role);
  auto exists = conn.ExecParams("SELECT 1 FROM pg_roles WHERE rolname = $1", {role});
  if (!exists.ok()) return exists.status();
  if (exists->rows() == 0) {
    if (auto r = conn.Exec("CREATE ROLE " + quoted); !r.ok()) return r.status();
  }
  // The server gets a SCRAM verifier, never the password itself.
  auto verifier = pg::ScramSha256Verifier(password);
  if (!verifier.ok()) return verifier.status();
  return conn
      .Exec(fmt::format("ALTER ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS {} "
                        "PASSWORD {}",
                        quoted, replication ? "REPLICATION" : "NOREPLICATION",
                        conn.Literal(*verifier)))
      .status();
}

Status ExecAll(pg::Connection& conn, const std::vector<std::string>& statements) {
  for (const auto& sql : statements) {
    if (auto r = conn.Exec(sql); !r.ok()) return Status::Error(r.message() + " (in: " + sql + ")");
  }
  return Status::Ok();
}

// Only the listed roles may connect to the database.
std::vector<std::string> ConnectOnly(const std::string& dbname,
                                     const std::vector<std::string>& roles) {
  std::string db = pg::QuoteIdentifier(dbname);
  std::string list;
  for (const auto& r : roles) list += (list.empty() ? "" : ", ") + pg::QuoteIdentifier(r);
  return {fmt::format("REVOKE ALL ON DATABASE {} FROM PUBLIC", db),
          fmt::format("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}", db, list)};
}

}  // namespace

Result<StageSecrets> MakeStageSecrets() {
  StageSecrets s;
  for (const char* role : {kGenerateRole, kCdcRole, kTransformRole, kCacheRole, kMonitorRole}) {
    auto pw = RandomSecretHex(16);
    if (!pw.ok()) return pw.status();
    s.pg[role] = *pw;
  }
  for (const char* user : {kCacheUser, kServeUser, kMonitorUser}) {
    auto pw = RandomSecretHex(16);
    if (!pw.ok()) return pw.status();
    s.redis[user] = *pw;
  }
  return s;
}

Result<StageSecrets> ReadStageSecrets(const fs::path& dir) {
  StageSecrets s;
  auto read = [&](const char* name, std::string* out) -> Status {
    std::ifstream in(dir / name);
    std::stringstream text;
    text << in.rdbuf();
    *out = text.str();
    while (!out->empty() && (out->back() == '\n' || out->back() == '\r' || out->back() == ' ')) {
      out->pop_back();
    }
    if (!in || out->empty() || out->find_first_of(" \t\r\n'\\") != std::string::npos) {
      return Status::Error(fmt::format(
          "{}: missing, empty, or holding spaces, quotes or backslashes (one password per "
          "file, named after its role)",
          (dir / name).string()));
    }
    return Status::Ok();
  };
  for (const char* role : {kGenerateRole, kCdcRole, kTransformRole, kCacheRole, kMonitorRole}) {
    if (Status st = read(role, &s.pg[role]); !st.ok()) return st;
  }
  for (const char* user : {kCacheUser, kServeUser, kMonitorUser}) {
    if (Status st = read(user, &s.redis[user]); !st.ok()) return st;
  }
  return s;
}

std::string RedisAclFile(const std::string& admin_password, const StageSecrets& secrets) {
  auto sha = [](const std::string& text) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
    std::string hex;
    for (unsigned char c : digest) hex += fmt::format("{:02x}", c);
    return hex;
  };
  std::string out = fmt::format("user default on #{} ~* &* +@all\n", sha(admin_password));
  for (const auto& user : RedisUsers(secrets)) {
    out += fmt::format("user {} on #{} {}\n", user.name, sha(user.password), user.rules);
  }
  return out;
}

std::vector<localsvc::LocalRedisOptions::User> RedisUsers(const StageSecrets& secrets) {
  // Every command a stage sends is listed (or its category): anything else is refused.
  // The cache's scripts are checked against its key pattern by Redis itself. Every
  // stage may ask for the slot map and follow ASK (Redis Cluster) and ask a server its
  // ROLE (behind Sentinels; the cache also waits for replicas with ROLE and WAIT).
  constexpr char kTopology[] = " +role +cluster|slots +cluster|nodes +asking";
  // Redis 7 ACL selector: its own key pattern and commands, so SET reaches no counter.
  constexpr char kServeSuspendSelector[] = " (%W~pdv:limit:suspended:* +set)";
  return {
      {kCacheUser, secrets.redis.at(kCacheUser),
       std::string("resetkeys ~pdv:* resetchannels &pdv:* -@all +@read +@write +@keyspace "
                   "+@scripting +@connection +publish -@dangerous") +
           kTopology},
      {kServeUser, secrets.redis.at(kServeUser),
       std::string("resetkeys %R~pdv:* resetchannels &__redis__:invalidate -@all +ping +auth "
                   "+hello +select +get +hget +hmget +exists +client|id +client|tracking "
                   "+subscribe "
                   // Its shared request counters (INCRBY, then a TTL)...
                   "%RW~pdv:limit:rate:* %RW~pdv:limit:day:* +incrby +pexpire +expire" +
                   // ...and, through a selector, only SET of a suspension.
                   std::string(kServeSuspendSelector)) +
           kTopology},
      {kMonitorUser, secrets.redis.at(kMonitorUser),
       std::string("resetkeys %R~pdv:* %RW~pdv:status resetchannels -@all +ping +auth +hello "
                   "+select +get +set +hget +hmget +hgetall +exists") +
           kTopology},
  };
}

Status GrantOltpAccess(const std::string& admin_url, const StageSecrets& secrets) {
  auto target = ParsePgUrl(admin_url);
  if (!target.ok()) return target.status();
  auto conn = pg::Connection::Connect(admin_url);
  if (!conn.ok()) return conn.status();
  if (Status s = generate::EnsureOltpSchema(*conn); !s.ok()) return s;
  for (const char* role : {kGenerateRole, kCdcRole, kMonitorRole}) {
    bool replication = std::strcmp(role, kCdcRole) == 0;
    if (Status s = EnsureRole(*conn, role, secrets.pg.at(role), replication); !s.ok()) return s;
  }
  std::vector<std::string> sql =
      ConnectOnly(target->dbname, {kGenerateRole, kCdcRole, kMonitorRole});
  sql.insert(sql.end(),
             {// Its initial load drops and rebuilds the constraints: owner.
              "ALTER TABLE public.clientes_clube OWNER TO pdv_generate",
              "ALTER TABLE public.pdv_generate_state OWNER TO pdv_generate",
              "GRANT SELECT ON public.clientes_clube TO pdv_cdc",
              "GRANT SELECT, INSERT, UPDATE ON public.clientes_clube TO pdv_monitor"});
  return ExecAll(*conn, sql);
}

Status GrantWarehouseAccess(const std::string& admin_url, const StageSecrets& secrets) {
  auto target = ParsePgUrl(admin_url);
  if (!target.ok()) return target.status();
  {
    // The warehouse's own schemas and tables, created by their owner (its Init).
    auto wh = warehouse::ConnectPostgresWarehouse(admin_url);
    if (!wh.ok()) return wh.status();
  }
  auto conn = pg::Connection::Connect(admin_url);
  if (!conn.ok()) return conn.status();
  for (const char* role : {kCdcRole, kTransformRole, kCacheRole, kMonitorRole}) {
    if (Status s = EnsureRole(*conn, role, secrets.pg.at(role), false); !s.ok()) return s;
  }
  std::vector<std::string> sql =
      ConnectOnly(target->dbname, {kCdcRole, kTransformRole, kCacheRole, kMonitorRole});
  sql.insert(
      sql.end(),
      {fmt::format("GRANT CREATE ON DATABASE {} TO pdv_transform",
                   pg::QuoteIdentifier(target->dbname)),
       "ALTER SCHEMA raw OWNER TO pdv_cdc", "ALTER SCHEMA staging OWNER TO pdv_transform",
       "ALTER SCHEMA marts OWNER TO pdv_transform",
       // What an earlier pdv up (one superuser for all) made goes to its stage.
       "DO $$ DECLARE r record; BEGIN FOR r IN SELECT n.nspname, c.relname, c.relkind FROM "
       "pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('raw', "
       "'staging', 'marts') AND c.relkind IN ('r', 'p', 'v', 'm') LOOP EXECUTE format('ALTER %s "
       "%I.%I OWNER TO %I', CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED "
       "VIEW' ELSE 'TABLE' END, r.nspname, r.relname, CASE r.nspname WHEN 'raw' THEN 'pdv_cdc' "
       "ELSE 'pdv_transform' END); END LOOP; END $$",
       "GRANT USAGE ON SCHEMA raw TO pdv_transform, pdv_monitor",
       "GRANT SELECT ON ALL TABLES IN SCHEMA raw TO pdv_transform, pdv_monitor",
       "ALTER DEFAULT PRIVILEGES FOR ROLE pdv_cdc IN SCHEMA raw GRANT SELECT ON TABLES TO "
       "pdv_transform, pdv_monitor",
       "GRANT USAGE ON SCHEMA marts TO pdv_cache, pdv_monitor",
       "GRANT SELECT ON ALL TABLES IN SCHEMA marts TO pdv_cache, pdv_monitor",
       "ALTER DEFAULT PRIVILEGES FOR ROLE pdv_transform IN SCHEMA marts GRANT SELECT ON TABLES "
       "TO pdv_cache, pdv_monitor",
       "GRANT USAGE ON SCHEMA platform TO pdv_cdc, pdv_transform, pdv_cache, pdv_monitor",
       "GRANT SELECT ON platform.api_keys TO pdv_cache",
       // Erased customers stay out of RAW (cdc) and out of reconcile's expectations.
       "GRANT SELECT ON platform.erasure_register TO pdv_cdc, pdv_monitor",
       // Active/standby: every stage takes and renews its lease (pg/lease.h).
       "GRANT SELECT, INSERT, UPDATE ON platform.stage_leases TO pdv_cdc, pdv_transform, "
       "pdv_cache, pdv_monitor",
       "GRANT SELECT, INSERT, UPDATE, DELETE ON platform.stage_instances TO pdv_cdc, "
       "pdv_transform, pdv_cache, pdv_monitor"});
  return ExecAll(*conn, sql);
}

Result<std::map<std::string, fs::path>> WriteStageConfigs(const fs::path& dir,
                                                          const fs::path& config_file,
                                                          const AdminUrls& admin,
                                                          const StageSecrets& secrets,
                                                          const std::string& cpf_key) {
  YAML::Node base;
  try {
    base = YAML::LoadFile(config_file.string());
  } catch (const YAML::Exception& e) {
    return Status::Error(fmt::format("{}: {}", config_file.string(), e.what()));
  }
  // Handed only to the stages that need it, below.
  YAML::Node erasure_key = YAML::Clone(base["erasure_key"]);
  YAML::Node erasure_register = YAML::Clone(base["erasure_register"]);
  for (const char* secret :
       {"oltp_url", "warehouse_url", "redis_url", "cpf_key", "erasure_key", "erasure_register"}) {
    base.remove(secret);
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || ::chmod(dir.c_str(), 0700) != 0) {
    return Status::Error(fmt::format("cannot create {}", dir.string()));
  }

  struct Need {
    const char* stage;
    const char* oltp_role;       // "" none
    const char* warehouse_role;  // "" none
    const char* redis_user;      // "" none
    bool cpf_key;
    bool erasure_key;  // the erasure register's (common/erasure.h)
  };
  const Need needs[] = {
      {"generate", kGenerateRole, "", "", true, false},
      {"cdc", kCdcRole, kCdcRole, "", false, true},
      {"transform", "", kTransformRole, "", false, false},
      {"cache", "", kCacheRole, kCacheUser, false, false},
      {"serve", "", "", kServeUser, true, false},
      {"monitor", kMonitorRole, kMonitorRole, kMonitorUser, false, false},
  };
  std::map<std::string, fs::path> files;
  for (const Need& need : needs) {
    YAML::Node node = YAML::Clone(base);
    if (*need.oltp_role) {
      auto url = PgUrlAs(admin.oltp, need.oltp_role, secrets.pg.at(need.oltp_role));
      if (!url.ok()) return url.status();
      node["oltp_url"] = *url;
    }
    if (*need.warehouse_role) {
      auto url = PgUrlAs(admin.warehouse, need.warehouse_role, secrets.pg.at(need.warehouse_role));
      if (!url.ok()) return url.status();
      node["warehouse_url"] = *url;
    }
    if (*need.redis_user) {
      auto url = RedisUrlAs(admin.redis, need.redis_user, secrets.redis.at(need.redis_user));
      if (!url.ok()) return url.status();
      node["redis_url"] = *url;
    }
    if (need.cpf_key) node["cpf_key"] = cpf_key;
    if (need.erasure_key && erasure_key) node["erasure_key"] = erasure_key;
    // The register's file too: cdc keeps erased customers out of RAW by it.
    if (need.erasure_key && erasure_register) node["erasure_register"] = erasure_register;
    if (std::strcmp(need.stage, "monitor") == 0) {
      node["monitor"]["probe_cpf_hash"] = monitor::ProbeCpfHash(cpf_key);
    }
    YAML::Emitter out;
    out << node;
    fs::path file = dir / (std::string(need.stage) + ".yaml");
    std::string text = std::string("# Written by `pdv up` at each start: the ") + need.stage +
                       " stage's settings and credentials only.\n" + out.c_str() + "\n";
    if (Status s = localsvc::WritePrivateFile(file, text, std::nullopt); !s.ok()) return s;
    files[need.stage] = file;
  }
  return files;
}

}  // namespace pdv::cli
