#include "common/config.h"

#include <fmt/format.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <memory>

#include "common/conninfo.h"
#include "common/host_port.h"
#include "common/redis_url.h"

extern char** environ;

namespace pdv {
namespace {

bool ParseDouble(const std::string& text, double* out) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(text.c_str(), &end);
  if (errno != 0 || end != text.c_str() + text.size() || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

bool ParseInt(const std::string& text, int64_t* out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

// Returns an empty string when valid, else what is wrong.
std::string Check(const ConfigKey& key, const std::string& v) {
  switch (key.kind) {
    case ConfigKind::kString:
      return "";
    case ConfigKind::kSecret:
      if (v.size() < key.min_length) {
        return fmt::format("expected at least {} characters, got {} (value hidden)", key.min_length,
                           v.size());
      }
      return "";
    case ConfigKind::kPostgresUrl: {
      auto parsed = pg::Conninfo::Parse(v);
      return parsed.ok() ? "" : fmt::format("not a valid PostgreSQL URL: {}", parsed.message());
    }
    case ConfigKind::kRedisUrl: {
      auto e = redis::ParseRedisUrl(v);
      if (!e.ok()) {
        return fmt::format("expected redis[s]://[user:password@]host:port[/db][?ca_cert=PATH]: {}",
                           e.message());
      }
      if (e->port == 0) return "port must be 1-65535";
      return "";
    }
    case ConfigKind::kHostPort: {
      auto hp = ParseHostPort(v);
      if (!hp.ok() || hp->port == 0) return fmt::format("expected host:port, got '{}'", v);
      return "";
    }
    case ConfigKind::kInt: {
      int64_t n = 0;
      if (!ParseInt(v, &n) || n < key.min || n > key.max) {
        return fmt::format("expected an integer from {} to {}, got '{}'",
                           static_cast<int64_t>(key.min), static_cast<int64_t>(key.max), v);
      }
      return "";
    }
    case ConfigKind::kDouble: {
      double d = 0;
      if (!ParseDouble(v, &d) || d < key.min || d > key.max) {
        return fmt::format("expected a number from {} to {}, got '{}'", key.min, key.max, v);
      }
      return "";
    }
    case ConfigKind::kEnum:
      if (std::find(key.choices.begin(), key.choices.end(), v) == key.choices.end()) {
        return fmt::format("expected one of {}, got '{}'", fmt::join(key.choices, "|"), v);
      }
      return "";
    case ConfigKind::kSqlName: {
      bool ok = !v.empty() && v.size() <= 63 && !std::isdigit(static_cast<unsigned char>(v[0])) &&
                std::all_of(v.begin(), v.end(), [](char c) {
                  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
                });
      if (!ok) {
        return fmt::format(
            "expected a name of lowercase letters, digits and _ (at most 63, not starting with a "
            "digit), got '{}'",
            v);
      }
      return "";
    }
  }
  return "";
}

const ConfigKey* FindKey(std::string_view name) {
  for (const auto& k : AllConfigKeys()) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

Status Flatten(const YAML::Node& node, const std::string& prefix, const std::string& file,
               std::map<std::string, std::pair<std::string, int>>* out) {
  for (const auto& item : node) {
    std::string key = item.first.as<std::string>();
    std::string name = prefix.empty() ? key : prefix + "." + key;
    int line = item.first.Mark().line + 1;
    if (item.second.IsMap()) {
      if (Status s = Flatten(item.second, name, file, out); !s.ok()) return s;
      continue;
    }
    if (FindKey(name) == nullptr) {
      return Status::Error(fmt::format("config: {}:{}: unknown key '{}'", file, line, name));
    }
    if (!item.second.IsScalar()) {
      return Status::Error(
          fmt::format("config: {}:{}: key '{}' must be a single value", file, line, name));
    }
    (*out)[name] = {item.second.Scalar(), line};
  }
  return Status::Ok();
}

}  // namespace

const std::vector<ConfigKey>& AllConfigKeys() {
  static const std::vector<ConfigKey> kKeys = [] {
    std::vector<ConfigKey> keys;
    auto add = [&](ConfigKey k) { keys.push_back(std::move(k)); };
    add({.name = "oltp_url",
         .kind = ConfigKind::kPostgresUrl,
         .default_value = "postgresql://127.0.0.1:5432/source_db",
         .help = "OLTP PostgreSQL (libpq URL)"});
    add({.name = "warehouse_url",
         .kind = ConfigKind::kPostgresUrl,
         .default_value = "postgresql://127.0.0.1:5432/warehouse",
         .help = "warehouse PostgreSQL (libpq URL)"});
    add({.name = "redis_url",
         .kind = ConfigKind::kRedisUrl,
         .default_value = "redis://127.0.0.1:6379/0",
         .help = "Redis URL"});
    add({.name = "cpf_key",
         .kind = ConfigKind::kSecret,
         .default_value = std::nullopt,
         .help = "secret key of cpf_hash (HMAC-SHA256), at least 16 characters",
         .min_length = 16});
    add({.name = "erasure_key",
         .kind = ConfigKind::kSecret,
         .default_value = std::nullopt,
         .help = "secret key of the erasure register's subject HMACs (pdv subject; cdc "
                 "keeps erased subjects out of RAW with it), at least 16 characters",
         .min_length = 16});
    add({.name = "erasure_register",
         .kind = ConfigKind::kString,
         .default_value = "",
         .help = "the erasure register's file, kept outside the warehouse so that a restore "
                 "cannot undo an erasure (pdv subject forget appends to it, reapply and cdc read "
                 "it; `pdv up`: <data-dir>/erasure-register); empty: the warehouse's only"});
    add({.name = "listen",
         .kind = ConfigKind::kHostPort,
         .default_value = "127.0.0.1:8080",
         .help = "API listen address"});
    add({.name = "log_format",
         .kind = ConfigKind::kEnum,
         .default_value = "kv",
         .help = "log lines as key=value (kv) or json",
         .choices = {"kv", "json"}});
    add({.name = "log_level",
         .kind = ConfigKind::kEnum,
         .default_value = "info",
         .help = "least severe level logged",
         .choices = {"debug", "info", "warn", "error"}});
    add({.name = "generate.seed",
         .kind = ConfigKind::kInt,
         .default_value = "1",
         .help = "random seed: the same seed gives the same customers",
         .min = 0,
         .max = 9.2e18});
    add({.name = "generate.initial",
         .kind = ConfigKind::kInt,
         .default_value = "0",
         .help = "customers to bulk-load before the workload",
         .min = 0,
         .max = 1e9});
    add({.name = "generate.rate",
         .kind = ConfigKind::kDouble,
         .default_value = "0",
         .help = "workload operations per second (0: no workload)",
         .min = 0,
         .max = 1e6});
    add({.name = "generate.duration",
         .kind = ConfigKind::kDouble,
         .default_value = "0",
         .help = "seconds of workload (0: until SIGINT/SIGTERM)",
         .min = 0,
         .max = 1e9});
    add({.name = "generate.delete_share",
         .kind = ConfigKind::kDouble,
         .default_value = "0.03",
         .help = "share of workload operations that delete a customer",
         .min = 0,
         .max = 0.5});
    add({.name = "generate.retry_timeout",
         .kind = ConfigKind::kDouble,
         .default_value = "60",
         .help = "seconds to keep retrying a lost database before giving up",
         .min = 0,
         .max = 1e9});
    add({.name = "raw.retention_days",
         .kind = ConfigKind::kInt,
         .default_value = "0",
         .help = "remove superseded RAW versions older than this many days (the latest state "
                 "of each customer always stays); 0: keep every version (LGPD art. 16: set it "
                 "to the retention your processing needs)",
         .min = 0,
         .max = 36500});
    add({.name = "cdc.slot",
         .kind = ConfigKind::kSqlName,
         .default_value = "pdv_slot",
         .help = "logical replication slot"});
    add({.name = "cdc.publication",
         .kind = ConfigKind::kSqlName,
         .default_value = "pdv_pub",
         .help = "publication the slot streams"});
    add({.name = "cdc.batch_rows",
         .kind = ConfigKind::kInt,
         .default_value = "20000",
         .help = "a RAW batch closes at this many rows",
         .min = 1,
         .max = 1e7});
    add({.name = "cdc.flush_idle_ms",
         .kind = ConfigKind::kInt,
         .default_value = "2",
         .help = "a RAW batch closes after this many ms without a change",
         .min = 0,
         .max = 60000});
    add({.name = "cdc.max_batch_age_ms",
         .kind = ConfigKind::kInt,
         .default_value = "5",
         .help = "a RAW batch closes when its first change is this many ms old",
         .min = 0,
         .max = 60000});
    add({.name = "cdc.decoding_work_mem",
         .kind = ConfigKind::kString,
         .default_value = "",
         .help = "logical_decoding_work_mem of the walsender (e.g. 64MB; empty: server's)"});
    add({.name = "cdc.streaming",
         .kind = ConfigKind::kEnum,
         .default_value = "off",
         .help = "on: the walsender streams large transactions before commit (spilled to "
                 "cdc.spill_dir here); off: it sends them whole at commit",
         .choices = {"on", "off"}});
    add({.name = "cdc.transaction_memory_mb",
         .kind = ConfigKind::kInt,
         .default_value = "64",
         .help = "MB of a batch's recent rows kept to carry unchanged TOASTed values "
                 "forward (past it they are looked up in the batch)",
         .min = 1,
         .max = 1e6});
    add({.name = "cdc.spill_dir",
         .kind = ConfigKind::kString,
         .default_value = "",
         .help = "directory of the unnamed spill files of streamed transactions (empty: "
                 "$TMPDIR or /tmp)"});
    add({.name = "cdc.metrics_listen",
         .kind = ConfigKind::kString,
         .default_value = "127.0.0.1:9187",
         .help = "host:port of the Prometheus metrics endpoint (port 0: any free; empty: off)"});
    add({.name = "cdc.retry_timeout",
         .kind = ConfigKind::kDouble,
         .default_value = "0",
         .help = "seconds to keep retrying lost connections (0: forever)",
         .min = 0,
         .max = 1e9});
    add({.name = "transform.project_dir",
         .kind = ConfigKind::kString,
         .default_value = "",
         .help = "the platform's dbt-style project (empty: the transform/ folder installed "
                 "with pdv)"});
    add({.name = "cache.retry_timeout",
         .kind = ConfigKind::kDouble,
         .default_value = "30",
         .help = "seconds `pdv cache sync` retries an unreachable Redis or warehouse",
         .min = 0,
         .max = 1e9});
    add({.name = "cache.replica_ack_ms",
         .kind = ConfigKind::kDouble,
         .default_value = "1000",
         .help = "ms the Redis replicas a failover could promote have to acknowledge a batch "
                 "before the cache's position moves past it (else the sync is retried)",
         .min = 1,
         .max = 600000});
    add({.name = "api.tls_cert",
         .kind = ConfigKind::kString,
         .help = "PEM certificate chain: the API serves HTTPS (with api.tls_key)"});
    add({.name = "api.tls_key",
         .kind = ConfigKind::kString,
         .help = "PEM private key of api.tls_cert"});
    add({.name = "api.threads",
         .kind = ConfigKind::kInt,
         .default_value = "0",
         .help = "API event loops (0: one per core)",
         .min = 0,
         .max = 256});
    add({.name = "api.max_connections",
         .kind = ConfigKind::kInt,
         .default_value = "10000",
         .help = "open client connections at most",
         .min = 1,
         .max = 1e6});
    add({.name = "api.max_connections_per_ip",
         .kind = ConfigKind::kInt,
         .default_value = "1000",
         .help = "open client connections per client address and replica; more are closed "
                 "at once (0: no cap). A store's NAT of hundreds of terminals stays well "
                 "below; behind a load balancer every connection has its address: set 0 and "
                 "cap per address at the balancer",
         .min = 0,
         .max = 1e6});
    add({.name = "api.rate_per_key",
         .kind = ConfigKind::kDouble,
         .default_value = "5000",
         .help = "requests per second per API key, across every API loop and replica "
                 "(counted in Redis; 0: no limit)",
         .min = 0,
         .max = 1e9});
    add({.name = "api.daily_quota_per_key",
         .kind = ConfigKind::kInt,
         .default_value = "0",
         .help = "requests per API key per UTC day, across replicas (0: no quota)",
         .min = 0,
         .max = 1e15});
    add({.name = "api.rate_per_ip",
         .kind = ConfigKind::kDouble,
         .default_value = "1000",
         .help = "requests per second per client address and replica, checked before the "
                 "key (0: no limit); the default is more than a store of hundreds of "
                 "terminals asks; behind a load balancer every request has its address: set 0 "
                 "and limit per address at the balancer",
         .min = 0,
         .max = 1e9});
    add({.name = "api.enumeration_ratio",
         .kind = ConfigKind::kDouble,
         .default_value = "0.5",
         .help = "a key whose lookups are more than this share of 404s is an enumeration "
                 "suspect: logged and counted, suspended only with api.enumeration_suspend "
                 "(0: not watched)",
         .min = 0,
         .max = 1});
    add({.name = "api.enumeration_min_lookups",
         .kind = ConfigKind::kInt,
         .default_value = "500",
         .help = "lookups in a window before a key's 404 share is judged",
         .min = 1,
         .max = 1e12});
    add({.name = "api.enumeration_window_s",
         .kind = ConfigKind::kInt,
         .default_value = "60",
         .help = "the enumeration watch's window, in seconds",
         .min = 1,
         .max = 86400});
    add({.name = "api.enumeration_suspend",
         .kind = ConfigKind::kEnum,
         .default_value = "off",
         .help = "suspend an enumeration suspect on every replica (403 CHAVE_SUSPENSA)",
         .choices = {"on", "off"}});
    add({.name = "api.enumeration_suspend_s",
         .kind = ConfigKind::kInt,
         .default_value = "3600",
         .help = "how long a suspension lasts, in seconds",
         .min = 1,
         .max = 1e8});
    add({.name = "api.idle_timeout_s",
         .kind = ConfigKind::kInt,
         .default_value = "30",
         .help = "a connection with no request begun for this long is closed",
         .min = 1,
         .max = 86400});
    add({.name = "api.read_timeout_s",
         .kind = ConfigKind::kInt,
         .default_value = "10",
         .help = "a request must arrive whole (first byte to end of body) within this many "
                 "seconds, and an answer be taken within it",
         .min = 1,
         .max = 3600});
    add({.name = "api.redis_timeout_ms",
         .kind = ConfigKind::kInt,
         .default_value = "40",
         .help = "a Redis reply later than this is a 503",
         .min = 1,
         .max = 60000});
    add({.name = "monitor.api_ca_cert",
         .kind = ConfigKind::kString,
         .help = "the CA of the API's certificate: the monitor and pdv status call it over "
                 "HTTPS"});
    add({.name = "monitor.probe_cpf_hash",
         .kind = ConfigKind::kString,
         .help = "the probe customer's cpf_hash, so that the monitor needs no cpf_key "
                 "(`pdv up` writes it)"});
    add({.name = "api.fields",
         .kind = ConfigKind::kString,
         .default_value = "primeiro_nome,ticket_medio_estimado,origem_campanha",
         .help = "the optional fields answers carry, comma-separated (none: only what the "
                 "register needs); data minimisation (LGPD art. 6, III): leave out what your "
                 "terminals do not use"});
    add({.name = "api.near_cache",
         .kind = ConfigKind::kEnum,
         .default_value = "on",
         .help = "in-process near-cache kept coherent by Redis tracking",
         .choices = {"on", "off"}});
    return keys;
  }();
  return kKeys;
}

std::string EnvVarFor(std::string_view key) {
  std::string env = "PDV_";
  for (char c : key) env += c == '.' ? '_' : static_cast<char>(::toupper(c));
  return env;
}

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    if (entry.rfind("PDV_", 0) != 0) continue;
    auto eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
  }
  return env;
}

Result<Config> Config::Load(const ConfigSources& sources) {
  Config config;
  for (const auto& k : AllConfigKeys()) {
    if (k.default_value) config.values_[k.name] = {*k.default_value, "default"};
  }

  std::optional<std::string> path = sources.file;
  bool explicit_file = path.has_value();
  if (!path) {
    if (auto it = sources.env.find("PDV_CONFIG"); it != sources.env.end() && !it->second.empty()) {
      path = it->second;
      explicit_file = true;
    } else if (std::filesystem::exists("pdv.yaml")) {
      path = "pdv.yaml";
    } else if (std::filesystem::exists(".pdv/pdv.yaml")) {
      path = ".pdv/pdv.yaml";  // the default data directory of `pdv up`
    }
  }
  if (path) {
    if (explicit_file && !std::filesystem::exists(*path)) {
      return Status::Error(fmt::format("config: file {} does not exist", *path));
    }
    YAML::Node root;
    try {
      root = YAML::LoadFile(*path);
    } catch (const YAML::ParserException& e) {
      return Status::Error(fmt::format("config: {}:{}: {}", *path, e.mark.line + 1, e.msg));
    } catch (const YAML::Exception& e) {
      return Status::Error(fmt::format("config: {}: {}", *path, e.what()));
    }
    if (!root.IsNull()) {
      if (!root.IsMap()) {
        return Status::Error(fmt::format("config: {}:1: expected a map of keys", *path));
      }
      std::map<std::string, std::pair<std::string, int>> flat;
      if (Status s = Flatten(root, "", *path, &flat); !s.ok()) return s;
      for (auto& [name, v] : flat) {
        config.values_[name] = {v.first, fmt::format("file {}:{}", *path, v.second)};
      }
    }
    config.file_ = path;
  }

  for (const auto& k : AllConfigKeys()) {
    std::string env = EnvVarFor(k.name);
    if (auto it = sources.env.find(env); it != sources.env.end()) {
      config.values_[k.name] = {it->second, "environment " + env};
    }
  }
  for (const auto& [name, flag] : sources.flags) {
    if (FindKey(name) == nullptr) {
      return Status::Error(fmt::format("config: flag {} sets unknown key '{}'", flag.flag, name));
    }
    config.values_[name] = {flag.value, "flag " + flag.flag};
  }

  for (const auto& [name, v] : config.values_) {
    const ConfigKey* key = FindKey(name);
    if (std::string what = Check(*key, v.value); !what.empty()) {
      return Status::Error(fmt::format("config: {} from {}: {}", name, v.source, what));
    }
  }
  return config;
}

Result<std::string> Config::Require(std::string_view key) const {
  if (auto v = Get(key)) return *v;
  return Status::Error(fmt::format(
      "config: {} is not set (set it in pdv.yaml, with {} or with its flag)", key, EnvVarFor(key)));
}

std::optional<std::string> Config::Get(std::string_view key) const {
  auto it = values_.find(key);
  if (it == values_.end()) return std::nullopt;
  return it->second.value;
}

int64_t Config::GetInt(std::string_view key) const {
  int64_t n = 0;
  auto v = Get(key);
  if (v) ParseInt(*v, &n);
  return n;
}

double Config::GetDouble(std::string_view key) const {
  double d = 0;
  auto v = Get(key);
  if (v) ParseDouble(*v, &d);
  return d;
}

std::string Config::SourceOf(std::string_view key) const {
  auto it = values_.find(key);
  return it == values_.end() ? "unset" : it->second.source;
}

}  // namespace pdv
