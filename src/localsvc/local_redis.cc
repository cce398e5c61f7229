#include "localsvc/local_redis.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "localsvc/launch_support.h"

namespace pdv::localsvc {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// One AUTH and PING over a plain socket: enough to know the server is up, without a
// client library in this component.
bool Pings(int port, const std::string& password) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = false;
  timeval tv{.tv_sec = 1, .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string hello = fmt::format("AUTH {}\r\nPING\r\n", password);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(hello.size())) {
    std::string got;
    char buf[64];
    ssize_t n;
    while (got.size() < 12 && (n = ::recv(fd, buf, sizeof(buf), 0)) > 0) got.append(buf, n);
    ok = got.rfind("+OK\r\n+PONG", 0) == 0;
  }
  ::close(fd);
  return ok;
}

// Whether the log, from `offset` on, says the TLS listener is ready.
bool SaysReady(const fs::path& log, uintmax_t offset) {
  std::ifstream in(log);
  in.seekg(static_cast<std::streamoff>(offset));
  std::stringstream text;
  text << in.rdbuf();
  return text.str().find("Ready to accept connections") != std::string::npos;
}

}  // namespace

Result<std::unique_ptr<LocalRedis>> LocalRedis::Start(LocalRedisOptions options) {
  std::unique_ptr<LocalRedis> redis(new LocalRedis());
  redis->options_ = options;
  auto account = ServerAccount("redis");
  if (!account.ok()) return account.status();
  redis->run_as_ = *account;
  auto password = PasswordOrRandom(options.password);
  if (!password.ok()) return password.status();
  redis->password_ = *password;
  for (const auto& secret : {redis->password_}) {
    if (secret.find_first_of(" \t\r\n\"'") != std::string::npos) {
      return Status::Error("a Redis password must not contain spaces or quotes");
    }
  }
  auto dir = OpenServerDir(options.dir, "pdv-redis", &redis->scratch_);
  if (!dir.ok()) return dir.status();
  redis->dir_ = *dir;
  if (Status s = GiveTo(redis->dir_, redis->run_as_); !s.ok()) return s;
  auto port = LaunchOnPort(options.port, [&](int p) {
    redis->port_ = p;
    return redis->Launch();
  });
  if (!port.ok()) return port.status();
  return redis;
}

// redis.conf: what would otherwise be on the command line, passwords included.
Status LocalRedis::WriteConfig() const {
  std::string text = fmt::format(
      "# Written by pdv on each start.\n"
      "bind 127.0.0.1{}\nport {}\nprotected-mode yes\ndir \"{}\"\nsave \"\"\nappendonly {}\n"
      "daemonize no\nhash-max-listpack-entries 1024\nrequirepass {}\n"
      // Its RDB and the AOF base uncompressed: an erasure's byte scan reads every string
      // (subject/byte_scan.h).
      "rdbcompression no\n",
      options_.host.empty() ? "" : " " + options_.host, options_.tls ? 0 : port_, dir_.string(),
      options_.persistent ? "yes" : "no", password_);
  // A replica (of a cluster, or made one by Sentinel after a failover) authenticates to
  // its primary with the same password.
  text += fmt::format("masterauth {}\n", password_);
  if (options_.cluster) {
    text += "cluster-enabled yes\ncluster-config-file nodes.conf\ncluster-node-timeout 2000\n";
    if (!options_.host.empty()) text += fmt::format("cluster-announce-ip {}\n", options_.host);
  }
  if (options_.replica_of) text += fmt::format("replicaof 127.0.0.1 {}\n", *options_.replica_of);
  if (options_.tls) {
    text += fmt::format(
        "tls-port {}\ntls-cert-file \"{}\"\ntls-key-file \"{}\"\ntls-auth-clients no\n"
        "tls-protocols \"TLSv1.2 TLSv1.3\"\n",
        port_, options_.tls->cert, options_.tls->key);
    if (!options_.tls->ca.empty())
      text += fmt::format("tls-ca-cert-file \"{}\"\n", options_.tls->ca);
  }
  for (const auto& user : options_.users) {
    if (user.name.find_first_of(" \t\r\n") != std::string::npos ||
        user.password.find_first_of(" \t\r\n") != std::string::npos ||
        user.rules.find_first_of("\r\n") != std::string::npos) {
      return Status::Error(
          fmt::format("Redis ACL user {}: no spaces or newlines allowed", user.name));
    }
    text += fmt::format("user {} on >{} {}\n", user.name, user.password, user.rules);
  }
  return WritePrivateFile(dir_ / "redis.conf", text, run_as_);
}

Status LocalRedis::Launch() {
  fs::path log = dir_ / "redis.log";
  if (Status s = WriteConfig(); !s.ok()) return s;
  // $PDV_REDIS_SERVER names another binary (tests use it to simulate a missing one).
  std::string binary = "redis-server";
  if (const char* env = std::getenv("PDV_REDIS_SERVER"); env && *env) binary = env;
  if (binary.find('/') != std::string::npos && ::access(binary.c_str(), X_OK) != 0) {
    return Status::Error(
        fmt::format("redis-server not found at {} (apt-get install redis-server)", binary));
  }
  std::error_code size_ec;
  uintmax_t log_start = fs::exists(log) ? fs::file_size(log, size_ec) : 0;
  SpawnOptions spawn{.argv = {binary, (dir_ / "redis.conf").string()},
                     .log_file = log.string(),
                     .parent_death_signal = SIGKILL};
  if (run_as_) {
    spawn.uid = run_as_->uid;
    spawn.gid = run_as_->gid;
  }
  auto child = ChildProcess::Spawn(spawn);
  if (!child.ok()) return child.status();
  server_.emplace(std::move(*child));
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    // Over TLS, readiness is the server saying so in this run's part of its log (this
    // component has no TLS client).
    if (options_.tls ? SaysReady(log, log_start) : Pings(port_, password_)) return Status::Ok();
    if (!server_->Running()) {
      return Status::Error(
          fmt::format("redis-server on port {} exited during start-up "
                      "(is redis-server installed?): {}",
                      port_, FileTail(log, 400)));
    }
    std::this_thread::sleep_for(5ms);
  }
  server_->Kill();
  return Status::Error(fmt::format("redis-server on port {} did not answer PING in 30 s", port_));
}

std::string LocalRedis::Address() const {
  return options_.host.empty() ? "127.0.0.1" : options_.host;
}

std::string LocalRedis::Url() const { return UrlAs("default", password_); }

std::string LocalRedis::UrlAs(const std::string& user, const std::string& password) const {
  if (options_.tls) {
    return fmt::format("rediss://{}:{}@{}:{}/0{}", user, password, Address(), port_,
                       options_.tls->ca.empty() ? "" : "?ca_cert=" + options_.tls->ca);
  }
  return fmt::format("redis://{}:{}@{}:{}/0", user, password, Address(), port_);
}

Status LocalRedis::Stop() {
  return StopServer(server_, SIGTERM, 30s,
                    fmt::format("redis-server on port {} did not stop in 30 s", port_));
}

Status LocalRedis::Restart() {
  if (Status s = Stop(); !s.ok()) return s;
  return Launch();
}

void LocalRedis::Kill() {
  if (server_) server_->Kill();
}

void LocalRedis::Signal(int sig) {
  if (server_) server_->Signal(sig);
}

LocalRedis::~LocalRedis() { (void)Stop(); }

}  // namespace pdv::localsvc
