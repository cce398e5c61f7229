// pdv up / pdv down: the whole platform on one machine, supervised.

#include "cli/up.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "api/apikeys.h"
#include "cli/subject_sources.h"
#include "cli/supervisor.h"
#include "cli/up_access.h"
#include "cli/up_account.h"
#include "common/config.h"
#include "common/conninfo.h"
#include "common/host_port.h"
#include "common/random_secret.h"
#include "localsvc/launch_support.h"
#include "localsvc/local_postgres.h"
#include "localsvc/local_redis.h"
#include "localsvc/scratch_dir.h"
#include "monitor/http_client.h"
#include "pg/connection.h"
#include "pg/reconnect.h"
#include "redis/client.h"
#include "subject/subject.h"

namespace pdv::cli {
namespace fs = std::filesystem;

namespace {

// Stops the stages in this order: writers first, the API after, CDC last (it then flushes
// what it has), so that nothing is left half-applied.
const std::vector<std::string> kStopOrder = {"monitor", "generate",  "serve",
                                             "cache",   "transform", "cdc"};

Status WriteFileOwnerOnly(const fs::path& file, const std::string& text, bool exclusive) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (exclusive ? O_EXCL : O_APPEND);
  int fd = ::open(file.c_str(), flags, 0600);
  if (fd < 0) {
    return Status::Error(fmt::format("cannot write {}: {}", file.string(), std::strerror(errno)));
  }
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!ok) return Status::Error(fmt::format("cannot write {}", file.string()));
  return Status::Ok();
}

std::string ReadText(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

int PortOf(const std::string& url) {
  // postgresql://user:pass@host:PORT/db, redis://host:PORT/0, host:PORT
  std::string_view rest = url;
  if (auto scheme = rest.find("://"); scheme != std::string_view::npos)
    rest.remove_prefix(scheme + 3);
  rest = rest.substr(0, rest.find('/'));
  if (auto at = rest.rfind('@'); at != std::string_view::npos) rest.remove_prefix(at + 1);
  auto hp = ParseHostPort(rest, 0);
  return hp.ok() ? hp->port : 0;
}

// The lowest port an account without CAP_NET_BIND_SERVICE may bind (the stages have none).
int FirstUnprivilegedPort() {
  std::string text = ReadText("/proc/sys/net/ipv4/ip_unprivileged_port_start");
  return text.empty() ? 1024 : std::atoi(text.c_str());
}

// Whether the URL of a server of ours carries a password (user:password@).
bool HasPassword(const std::string& url) {
  std::string_view rest = url;
  if (auto scheme = rest.find("://"); scheme != std::string_view::npos)
    rest.remove_prefix(scheme + 3);
  auto at = rest.find('@');
  return at != std::string_view::npos && rest.substr(0, at).find(':') != std::string_view::npos;
}

// `url` with `user` and `password` (the URLs an earlier pdv up wrote had none).
std::string AddPassword(const std::string& url, const std::string& user,
                        const std::string& password) {
  auto scheme = url.find("://");
  std::string head = url.substr(0, scheme + 3), rest = url.substr(scheme + 3);
  auto at = rest.find('@');
  if (at != std::string::npos && at < rest.find('/')) rest.erase(0, at + 1);
  return head + user + ":" + password + "@" + rest;
}

// pdv.yaml of the data directory: created on first use, completed with keys (and server
// passwords) a previous version did not write. Owner-only: it holds cpf_key and the
// servers' administrator passwords.
Status EnsureConfigFile(const fs::path& file, const UpOptions& options) {
  std::string existing = fs::exists(file) ? ReadText(file) : "";
  auto has = [&](const std::string& key) {
    return existing.find("\n" + key + ":") != std::string::npos ||
           existing.rfind(key + ":", 0) == 0;
  };
  bool rewrite = false;
  // Upgrade: a server URL without a password gets one (the server is then set to it).
  {
    std::stringstream in(existing);
    std::string line, upgraded;
    while (std::getline(in, line)) {
      for (const char* key : {"oltp_url", "warehouse_url", "redis_url"}) {
        std::string prefix = std::string(key) + ": ";
        if (line.rfind(prefix, 0) != 0 || HasPassword(line.substr(prefix.size()))) continue;
        auto pw = RandomSecretHex(16);
        if (!pw.ok()) return pw.status();
        std::string user = std::string(key) == "redis_url" ? "default" : "postgres";
        line = prefix + AddPassword(line.substr(prefix.size()), user, *pw);
        rewrite = true;
      }
      upgraded += line + "\n";
    }
    if (rewrite) existing = upgraded;
  }
  std::string add;
  auto port = [&]() -> Result<int> { return localsvc::FreeLoopbackPort(); };
  if (existing.empty()) {
    add +=
        "# Written by `pdv up`. Keep it private: cpf_key keys every cpf_hash, and the URLs "
        "hold the servers' administrator passwords.\n";
  }
  for (const char* db : {"oltp_url", "warehouse_url"}) {
    if (has(db)) continue;
    auto p = port();
    if (!p.ok()) return p.status();
    auto pw = RandomSecretHex(16);
    if (!pw.ok()) return pw.status();
    add += fmt::format("{}: postgresql://postgres:{}@127.0.0.1:{}/{}\n", db, *pw, *p,
                       std::string(db) == "oltp_url" ? "source_db" : "warehouse");
  }
  if (!has("redis_url")) {
    auto p = port();
    if (!p.ok()) return p.status();
    auto pw = RandomSecretHex(16);
    if (!pw.ok()) return pw.status();
    add += fmt::format("redis_url: redis://default:{}@127.0.0.1:{}/0\n", *pw, *p);
  }
  if (!has("listen")) add += fmt::format("listen: {}\n", options.listen.value_or("127.0.0.1:8080"));
  if (!has("cdc")) {
    auto p = port();
    if (!p.ok()) return p.status();
    add += fmt::format("cdc:\n  metrics_listen: 127.0.0.1:{}\n", *p);
  }
  if (!has("cpf_key")) {
    auto key = RandomSecretHex(32);
    if (!key.ok()) return key.status();
    add += fmt::format("cpf_key: {}\n", *key);
  }
  if (!has("erasure_key")) {
    auto key = RandomSecretHex(32);
    if (!key.ok()) return key.status();
    add += fmt::format("erasure_key: {}\n", *key);
  }
  // The erasure register's copy beside this file: a restore of the warehouse cannot undo
  // it (common/erasure_register_file.h).
  if (!has("erasure_register")) {
    add +=
        fmt::format("erasure_register: {}\n", (file.parent_path() / "erasure-register").string());
  }
  if (add.empty() && !rewrite) return Status::Ok();
  if (!existing.empty() && existing.back() != '\n') add = "\n" + add;
  if (rewrite) {
    fs::path next = file.string() + ".next";
    std::error_code ec;
    fs::remove(next, ec);
    if (Status s = WriteFileOwnerOnly(next, existing + add, true); !s.ok()) return s;
    fs::rename(next, file, ec);
    if (ec) return Status::Error(fmt::format("cannot replace {}: {}", file.string(), ec.message()));
    return Status::Ok();
  }
  return WriteFileOwnerOnly(file, add, existing.empty());
}

// The password in a server URL of ours.
std::string PasswordOf(const std::string& url) {
  if (url.rfind("redis://", 0) == 0) {
    auto e = redis::ParseRedisUrl(url);
    return e.ok() ? e->password : "";
  }
  auto parsed = pg::Conninfo::Parse(url);
  return parsed.ok() ? parsed->Get("password") : "";
}

// The pid file that tells `pdv down` (and a second `up`) who runs this data directory.
class PidFile {
 public:
  static Result<PidFile> Claim(const fs::path& file) {
    if (fs::exists(file)) {
      pid_t pid = std::atoi(ReadText(file).c_str());
      if (pid > 0 && ::kill(pid, 0) == 0) {
        return Status::Error(
            fmt::format("pdv up is already running for {} (pid {}); "
                        "`pdv down --data-dir {}` stops it",
                        file.parent_path().string(), pid, file.parent_path().string()));
      }
      fs::remove(file);
    }
    if (Status s = WriteFileOwnerOnly(file, std::to_string(::getpid()) + "\n", true); !s.ok()) {
      return s;
    }
    return PidFile(file);
  }
  PidFile(PidFile&& o) noexcept : file_(std::move(o.file_)) { o.file_.clear(); }
  ~PidFile() {
    std::error_code ec;
    if (!file_.empty()) fs::remove(file_, ec);
  }

 private:
  explicit PidFile(fs::path file) : file_(std::move(file)) {}
  fs::path file_;
};

// The API key a user (or the probe) calls with: created once, kept owner-only.
Result<std::string> EnsureApiKey(const fs::path& file, const std::string& redis_url,
                                 const std::string& warehouse_url, const std::string& name,
                                 bool* created) {
  *created = false;
  if (fs::exists(file)) return ReadText(file);
  // A key whose file was lost is useless.
  (void)api::RevokeApiKey(redis_url, warehouse_url, name);
  auto key = api::CreateApiKey(redis_url, warehouse_url, name);
  if (!key.ok()) return key.status();
  if (Status s = WriteFileOwnerOnly(file, *key + "\n", true); !s.ok()) return s;
  *created = true;
  return key;
}

std::string FirstLine(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  return line;
}

// subject::Reapply when the warehouse's register lacks requests of the file: the rows,
// every layer, then the files as forget does them (only the relations that still hold
// the person rewritten, the warehouse's WAL from before removed, Redis's AOF rewritten,
// cpfs.txt, the data directory scanned). The OLTP's WAL is not waited for: cdc, whose
// slot keeps it, is not running yet; the log line says how to finish.
Status ReapplyErasures(const Config& config, const fs::path& dir, Logger& log,
                       std::stop_token stop) {
  subject::Sources sources = SubjectSources(config);
  if (sources.erasure_register.empty()) return Status::Ok();
  auto report = subject::Reapply(
      sources, {.data_dir = dir.string(), .only_if_behind = true, .source_wal_waits_for_cdc = true},
      log, stop);
  if (!report.ok()) return Status::Error("the erasure register: " + report.message());
  if (report->contains("skipped")) return Status::Ok();
  const nlohmann::json files = report->value("files", nlohmann::json::object());
  const nlohmann::json scan = files.value("scan", nlohmann::json::object());
  // Where a value was found (file and kind, never the value).
  std::string found;
  for (const auto& f : scan.value("found", nlohmann::json::array())) {
    found += (found.empty() ? "" : ", ") + f.value("file", "") + " (" + f.value("value", "") + ")";
  }
  const bool source_wal_left =
      files.contains("oltp_wal") && !files["oltp_wal"].value("removed", true);
  log.Warn("erasures_reapplied",
           {{"customers", report->value("customers_found", uint64_t{0})},
            {"data_dir_clean", scan.value("clean", !report->contains("files"))},
            {"found_in", found.empty() ? std::string("nothing") : found},
            {"then", source_wal_left ? "pdv subject reapply --data-dir <data-dir>, while the "
                                       "platform runs, clears the source's WAL too"
                                     : "nothing"}});
  return Status::Ok();
}

}  // namespace

Status Up(const UpOptions& options, Logger& log, std::stop_token stop) {
  // Whatever the caller's umask: nothing under the data directory is for another user.
  ::umask(077);
  fs::path dir = fs::absolute(options.data_dir).lexically_normal();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return Status::Error(
        fmt::format("cannot create data directory {}: {}", dir.string(), ec.message()));
  }
  // First, so that a running `up` of this directory is not disturbed.
  auto pid_file = PidFile::Claim(dir / "up.pid");
  if (!pid_file.ok()) return pid_file.status();
  // As root, root's work ends here: the account is chosen (made on first use), given the
  // data directory, and this process becomes it before any server or stage starts.
  std::optional<localsvc::RunAs> account;
  if (::geteuid() == 0) {
    auto chosen = ChoosePlatformAccount(dir);
    if (!chosen.ok()) return chosen.status();
    account = *chosen;
    if (Status s = localsvc::CheckReachable(dir, account, AccountName(account->uid)); !s.ok()) {
      return s;
    }
  }
  // Earlier versions left the servers' files to their own accounts and some readable by
  // anyone: every start makes the whole directory owner-only again.
  if (Status s = MakePrivate(dir, account); !s.ok()) return s;
  if (account) {
    if (Status s = DropPrivileges(*account); !s.ok()) return s;
  }
  if (::access(dir.c_str(), W_OK) != 0) {
    return Status::Error(fmt::format("data directory {} is not writable", dir.string()));
  }
  std::error_code exe_ec;
  std::string exe = fs::read_symlink("/proc/self/exe", exe_ec).string();
  // The stages are this binary, run by the account: a build under /root (0700) is not
  // reachable by it.
  if (account && ::access(exe.c_str(), X_OK) != 0) {
    return Status::Error(
        fmt::format("{} cannot be run by the '{}' account the platform runs as: install pdv (cmake "
                    "--install) or build it in a directory every account can enter",
                    exe, AccountName(account->uid)));
  }
  fs::path config_file = dir / "pdv.yaml";
  if (Status s = EnsureConfigFile(config_file, options); !s.ok()) return s;
  // Only the file counts: the environment must not point the stages at other servers.
  auto config = Config::Load({.file = config_file.string()});
  if (!config.ok()) return config.status();
  for (const auto& key : AllConfigKeys()) ::unsetenv(EnvVarFor(key.name).c_str());
  std::string oltp_url = *config->Get("oltp_url"), warehouse_url = *config->Get("warehouse_url");
  std::string redis_url = *config->Get("redis_url"), listen = *config->Get("listen");
  std::string metrics_listen = config->Get("cdc.metrics_listen").value_or("");

  // Every port must be free before anything starts, so a failure leaves nothing running.
  struct PortUse {
    int port;
    const char* what;
  };
  for (PortUse use :
       {PortUse{PortOf(oltp_url), "oltp_url"}, PortUse{PortOf(warehouse_url), "warehouse_url"},
        PortUse{PortOf(redis_url), "redis_url"}, PortUse{PortOf(listen), "listen"},
        PortUse{PortOf(metrics_listen), "cdc.metrics_listen"}}) {
    if (use.port > 0 && use.port < FirstUnprivilegedPort()) {
      return Status::Error(fmt::format(
          "port {} ({} in {}) is privileged, and the platform runs without privileges: use a "
          "port from {} up (behind a proxy for 443), or lower net.ipv4.ip_unprivileged_port_start",
          use.port, use.what, config_file.string(), FirstUnprivilegedPort()));
    }
    if (use.port > 0 && !localsvc::LoopbackPortFree(use.port)) {
      return Status::Error(fmt::format("port {} ({} in {}) is already in use by another process",
                                       use.port, use.what, config_file.string()));
    }
  }
  fs::create_directories(dir / "logs", ec);

  auto secrets = MakeStageSecrets();
  if (!secrets.ok()) return secrets.status();
  // WAL segments are removed, not renamed and kept, once a checkpoint passes them: an
  // erasure's bytes leave pg_wal (subject/disk_erasure.h).
  const std::vector<std::string> pg_settings = {"wal_recycle=off"};
  auto oltp = localsvc::LocalPostgres::Start({.dir = dir / "oltp",
                                              .port = PortOf(oltp_url),
                                              .durable = true,
                                              .settings = pg_settings,
                                              .password = PasswordOf(oltp_url)});
  if (!oltp.ok()) return Status::Error("OLTP PostgreSQL: " + oltp.message());
  auto warehouse = localsvc::LocalPostgres::Start({.dir = dir / "warehouse",
                                                   .port = PortOf(warehouse_url),
                                                   .durable = true,
                                                   .settings = pg_settings,
                                                   .password = PasswordOf(warehouse_url)});
  if (!warehouse.ok()) return Status::Error("warehouse PostgreSQL: " + warehouse.message());
  auto redis = localsvc::LocalRedis::Start({.dir = dir / "redis",
                                            .port = PortOf(redis_url),
                                            .persistent = true,
                                            .password = PasswordOf(redis_url),
                                            .users = RedisUsers(*secrets)});
  if (!redis.ok()) return Status::Error("Redis: " + redis.message());
  if (Status s = (*oltp)->EnsureDatabase("source_db"); !s.ok()) return s;
  if (Status s = (*warehouse)->EnsureDatabase("warehouse"); !s.ok()) return s;
  log.Info("servers_started", {{"oltp", oltp_url},
                               {"warehouse", warehouse_url},
                               {"redis", redis_url},
                               {"data_dir", dir.string()},
                               {"uid", static_cast<int64_t>(::getuid())}});
  if (Status s = GrantOltpAccess(oltp_url, *secrets); !s.ok()) {
    return Status::Error("OLTP roles: " + s.message());
  }
  if (Status s = GrantWarehouseAccess(warehouse_url, *secrets); !s.ok()) {
    return Status::Error("warehouse roles: " + s.message());
  }
  auto stage_files =
      WriteStageConfigs(dir / "stages", config_file,
                        {.oltp = oltp_url, .warehouse = warehouse_url, .redis = redis_url},
                        *secrets, *config->Get("cpf_key"));
  if (!stage_files.ok()) return stage_files.status();

  // A warehouse brought back from a backup while the platform was down holds again whom
  // the register's file says were erased: erased again before any stage reads it.
  if (Status s = ReapplyErasures(*config, dir, log, stop); !s.ok()) return s;

  bool key_created = false, probe_created = false;
  auto api_key = EnsureApiKey(dir / "api-key", redis_url, warehouse_url, "pdv-up", &key_created);
  if (!api_key.ok()) return api_key.status();
  auto probe_key =
      EnsureApiKey(dir / "probe-key", redis_url, warehouse_url, "pdv-probe", &probe_created);
  if (!probe_key.ok()) return probe_key.status();

  // Each stage reads its own file: its credentials, and no one else's.
  auto pdv = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {exe, "--config", stage_files->at(args.front()).string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  };
  std::string rate = fmt::format("{}", options.rate);
  std::string cpfs = (dir / "cpfs.txt").string();
  Supervisor stages(dir / "logs", log);
  std::vector<StageSpec> specs = {
      // The initial load happens once: a second `up` or a restart finds the table filled.
      {"generate", pdv({"generate", "--initial", std::to_string(options.initial), "--only-if-empty",
                        "--rate", rate, "--cpf-out", cpfs})},
      {"cdc", pdv({"cdc"})},
      {"transform", pdv({"transform", "watch", "--platform", "--target-path",
                         (dir / "transform-target").string()})},
      {"cache", pdv({"cache", "watch"})},
      {"serve", pdv({"serve"})},
      {"monitor", pdv({"monitor", "--api-key-file", (dir / "probe-key").string(), "--interval-ms",
                       std::to_string(options.probe_interval_ms)})}};
  for (auto& spec : specs) {
    if (Status s = stages.Start(std::move(spec)); !s.ok()) {
      stages.StopAll(kStopOrder);
      return s;
    }
  }

  // Ready when a real customer's lookup is answered.
  monitor::HttpClient http(listen, 2000);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(options.ready_timeout_s);
  std::string cpf;
  bool ready = false;
  while (!stop.stop_requested() && std::chrono::steady_clock::now() < deadline) {
    stages.Tick();
    if (cpf.empty()) cpf = FirstLine(cpfs);
    if (!cpf.empty()) {
      auto r = http.Get("/v1/clientes/" + cpf, {{"X-API-Key", *api_key}});
      if (r.ok() && r->status == 200) {
        ready = true;
        break;
      }
    }
    pg::SleepFor(std::chrono::milliseconds(200), stop);
  }
  if (!ready && !stop.stop_requested()) {
    log.Warn("up_not_ready", {{"waited_s", static_cast<int64_t>(options.ready_timeout_s)},
                              {"logs", (dir / "logs").string()}});
  }
  if (ready) {
    std::string key_line = key_created
                               ? fmt::format("{}   (shown once; kept in {}, mode 0600)", *api_key,
                                             (dir / "api-key").string())
                               : fmt::format("in {} (mode 0600)", (dir / "api-key").string());
    fmt::print(
        "\npdv up: the platform is running (data in {})\n"
        "  API          http://{}   status page: http://{}/status\n"
        "  API key      {}\n"
        "  try          curl -s -H \"X-API-Key: $(cat {})\" http://{}/v1/clientes/{}\n"
        "  state        pdv status --data-dir {}\n"
        "  stop         Ctrl-C, or pdv down --data-dir {}\n\n",
        dir.string(), listen, listen, key_line, (dir / "api-key").string(), listen, cpf,
        dir.string(), dir.string());
    std::fflush(stdout);
  }
  while (!stop.stop_requested()) {
    stages.Tick();
    pg::SleepFor(std::chrono::milliseconds(200), stop);
  }
  log.Info("up_stopping", {{"data_dir", dir.string()}});
  stages.StopAll(kStopOrder);
  // Servers last.
  Status r = (*redis)->Stop();
  Status w = (*warehouse)->Stop();
  Status o = (*oltp)->Stop();
  log.Info("up_stopped", {{"data_dir", dir.string()}});
  if (!r.ok()) return r;
  if (!w.ok()) return w;
  return o;
}

Status Down(const fs::path& data_dir, std::chrono::seconds timeout) {
  fs::path file = fs::absolute(data_dir) / "up.pid";
  if (!fs::exists(file)) {
    return Status::Error(
        fmt::format("no pdv up is running for {}", fs::absolute(data_dir).string()));
  }
  pid_t pid = std::atoi(ReadText(file).c_str());
  if (pid <= 0 || ::kill(pid, SIGTERM) != 0) {
    return Status::Error(fmt::format("no pdv up is running for {} (stale {})",
                                     fs::absolute(data_dir).string(), file.string()));
  }
  // Done when `up` has removed its pid file (after stopping everything), or is gone (a
  // zombie its parent has not reaped yet counts as gone).
  auto gone = [&] {
    if (!fs::exists(file) || ::kill(pid, 0) != 0) return true;
    std::string stat = ReadText(fmt::format("/proc/{}/stat", pid));
    auto paren = stat.rfind(')');
    return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z';
  };
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (gone()) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Status::Error(
      fmt::format("pdv up (pid {}) did not stop within {} s", pid, timeout.count()));
}

}  // namespace pdv::cli
