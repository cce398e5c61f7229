#include "localsvc/local_redis.h"

#include <arpa/inet.h>
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

// One PING over a plain socket: enough to know the server is up, without a client
// library in this component.
bool Pings(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = false;
  timeval tv{.tv_sec = 1, .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::send(fd, "PING\r\n", 6, MSG_NOSIGNAL) == 6) {
    char buf[16] = {};
    ok = ::recv(fd, buf, sizeof(buf) - 1, 0) > 0 && std::strncmp(buf, "+PONG", 5) == 0;
  }
  ::close(fd);
  return ok;
}

}  // namespace

Result<std::unique_ptr<LocalRedis>> LocalRedis::Start(LocalRedisOptions options) {
  std::unique_ptr<LocalRedis> redis(new LocalRedis());
  redis->options_ = options;
  auto dir = OpenServerDir(options.dir, "pdv-redis", &redis->scratch_);
  if (!dir.ok()) return dir.status();
  redis->dir_ = *dir;
  auto port = LaunchOnPort(options.port, [&](int p) {
    redis->port_ = p;
    return redis->Launch();
  });
  if (!port.ok()) return port.status();
  return redis;
}

Status LocalRedis::Launch() {
  fs::path log = dir_ / "redis.log";
  // $PDV_REDIS_SERVER names another binary (tests use it to simulate a missing one).
  std::string binary = "redis-server";
  if (const char* env = std::getenv("PDV_REDIS_SERVER"); env && *env) binary = env;
  if (binary.find('/') != std::string::npos && ::access(binary.c_str(), X_OK) != 0) {
    return Status::Error(
        fmt::format("redis-server not found at {} (apt-get install redis-server)", binary));
  }
  SpawnOptions spawn{
      .argv = {binary, "--bind", "127.0.0.1", "--port", std::to_string(port_), "--dir",
               dir_.string(), "--save", "", "--appendonly", options_.persistent ? "yes" : "no",
               "--daemonize", "no", "--protected-mode", "yes"},
      .log_file = log.string(),
      .parent_death_signal = SIGKILL};
  auto child = ChildProcess::Spawn(spawn);
  if (!child.ok()) return child.status();
  server_.emplace(std::move(*child));
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (Pings(port_)) return Status::Ok();
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

std::string LocalRedis::Url() const { return fmt::format("redis://127.0.0.1:{}/0", port_); }

Status LocalRedis::Stop() {
  if (!server_ || !server_->Running()) return Status::Ok();
  server_->Signal(SIGTERM);
  if (!server_->Wait(30s)) {
    server_->Kill();
    return Status::Error(fmt::format("redis-server on port {} did not stop in 30 s", port_));
  }
  return Status::Ok();
}

Status LocalRedis::Restart() {
  if (Status s = Stop(); !s.ok()) return s;
  return Launch();
}

void LocalRedis::Kill() {
  if (server_) server_->Kill();
}

LocalRedis::~LocalRedis() { (void)Stop(); }

}  // namespace pdv::localsvc
