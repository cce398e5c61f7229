#include "localsvc/local_redis.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

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
  if (options.dir) {
    redis->dir_ = *options.dir;
    std::error_code ec;
    fs::create_directories(redis->dir_, ec);
    if (ec)
      return Status::Error(fmt::format("cannot create {}: {}", redis->dir_.string(), ec.message()));
  } else {
    auto scratch = ScratchDir::Create("pdv-redis");
    if (!scratch.ok()) return scratch.status();
    redis->dir_ = scratch->path();
    redis->scratch_.emplace(std::move(*scratch));
  }
  Status launched;
  for (int attempt = 0; attempt < 3; ++attempt) {
    redis->port_ = options.port;
    if (redis->port_ == 0) {
      auto port = FreeLoopbackPort();
      if (!port.ok()) return port.status();
      redis->port_ = *port;
    }
    launched = redis->Launch();
    if (launched.ok() || options.port != 0) break;
  }
  if (!launched.ok()) return launched;
  return redis;
}

Status LocalRedis::Launch() {
  fs::path log = dir_ / "redis.log";
  SpawnOptions spawn{
      .argv = {"redis-server", "--bind", "127.0.0.1", "--port", std::to_string(port_), "--dir",
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
      std::ifstream in(log);
      std::stringstream all;
      all << in.rdbuf();
      std::string tail = all.str();
      if (tail.size() > 400) tail = tail.substr(tail.size() - 400);
      return Status::Error(
          fmt::format("redis-server on port {} exited during start-up "
                      "(is redis-server installed?): {}",
                      port_, tail));
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
