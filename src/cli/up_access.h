#pragma once

// Least privilege in `pdv up`: one database role and Redis user per stage, each stage
// with a configuration file holding only its own credentials and secrets.

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "localsvc/local_redis.h"

namespace pdv::cli {

// The passwords of the stage roles (PostgreSQL) and users (Redis), fresh at each
// `pdv up`: they live only in the stage files it rewrites.
struct StageSecrets {
  std::map<std::string, std::string> pg;     // role -> password
  std::map<std::string, std::string> redis;  // ACL user -> password
};
Result<StageSecrets> MakeStageSecrets();

// The Redis ACL users: pdv-cache (reads and writes pdv:*, runs its scripts),
// pdv-serve (reads pdv:*, client tracking), pdv-monitor (reads pdv:*, writes the status).
std::vector<localsvc::LocalRedisOptions::User> RedisUsers(const StageSecrets& secrets);

// As the superuser: creates the OLTP schema and the stage roles there (generate: owner
// of clientes_clube, as its initial load rebuilds the constraints; cdc: REPLICATION and reader;
// monitor: writer of its probe row), and sets their passwords. Idempotent.
Status GrantOltpAccess(const std::string& admin_url, const StageSecrets& secrets);
// The same in the warehouse: cdc owns raw; transform reads raw and owns staging and marts
// (and may create schemas, as dbt does); cache reads marts and platform.api_keys;
// monitor reads raw and marts.
Status GrantWarehouseAccess(const std::string& admin_url, const StageSecrets& secrets);

// The same passwords read from files in `dir`, one per role or user, named after it
// (pdv_cdc, pdv-serve, ...): how a deployment other than `pdv up` gives them.
Result<StageSecrets> ReadStageSecrets(const std::filesystem::path& dir);

// A Redis ACL file (aclfile) for the stage users and the default user with
// `admin_password`: passwords as SHA-256 (#...), never in clear.
std::string RedisAclFile(const std::string& admin_password, const StageSecrets& secrets);

struct AdminUrls {
  std::string oltp, warehouse, redis;
};
// Writes <dir>/<stage>.yaml for generate, cdc, transform, cache, serve and monitor
// (directory 0700, files 0600): pdv.yaml's settings without its URLs and cpf_key, plus
// the stage's own URLs, and cpf_key only for generate and serve. Returns stage -> file.
Result<std::map<std::string, std::filesystem::path>> WriteStageConfigs(
    const std::filesystem::path& dir, const std::filesystem::path& config_file,
    const AdminUrls& admin, const StageSecrets& secrets, const std::string& cpf_key);

}  // namespace pdv::cli
