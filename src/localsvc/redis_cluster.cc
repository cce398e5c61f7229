#include "localsvc/redis_cluster.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "localsvc/child_process.h"
#include "localsvc/launch_support.h"
#include "localsvc/scratch_dir.h"

namespace pdv::localsvc {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// Runs redis-cli with the password on stdin; its output, and whether it exited 0.
std::pair<bool, std::string> RedisCli(const std::vector<std::string>& args,
                                      const std::string& password, std::chrono::seconds timeout) {
  auto dir = ScratchDir::Create("pdv-redis-cli");
  if (!dir.ok()) return {false, dir.message()};
  fs::path secret = dir->path() / "password", out = dir->path() / "out";
  if (Status s = WritePrivateFile(secret, password + "\n", std::nullopt); !s.ok()) {
    return {false, s.message()};
  }
  std::vector<std::string> argv = {"redis-cli", "--no-auth-warning", "--askpass"};
  argv.insert(argv.end(), args.begin(), args.end());
  Status s =
      RunCommand({.argv = argv, .log_file = out.string(), .stdin_file = secret.string()}, timeout);
  std::ifstream in(out);
  std::stringstream text;
  text << in.rdbuf();
  return {s.ok(), text.str()};
}

}  // namespace

std::string RedisCliOutput(const std::string& node, const std::string& password,
                           const std::vector<std::string>& command) {
  auto colon = node.rfind(':');
  std::vector<std::string> args = {"-h", node.substr(0, colon), "-p", node.substr(colon + 1)};
  args.insert(args.end(), command.begin(), command.end());
  return RedisCli(args, password, 30s).second;
}

Status FormRedisCluster(const std::vector<std::string>& nodes, const std::string& password,
                        std::chrono::seconds timeout) {
  std::vector<std::string> args = {"--cluster", "create"};
  args.insert(args.end(), nodes.begin(), nodes.end());
  args.insert(args.end(), {"--cluster-replicas", "1", "--cluster-yes"});
  auto [ran, out] = RedisCli(args, password, timeout);
  if (!ran || out.find("All 16384 slots covered") == std::string::npos) {
    return Status::Error("redis-cli --cluster create failed: " + out.substr(0, 2000));
  }
  return WaitForRedisCluster(nodes, password, timeout);
}

Status WaitForRedisCluster(const std::vector<std::string>& nodes, const std::string& password,
                           std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    bool ready = true;
    for (const auto& n : nodes) {
      std::string info = RedisCliOutput(n, password, {"CLUSTER", "INFO"});
      std::string repl = RedisCliOutput(n, password, {"INFO", "replication"});
      if (info.find("cluster_state:ok") == std::string::npos ||
          (repl.find("role:slave") != std::string::npos &&
           repl.find("master_link_status:up") == std::string::npos)) {
        ready = false;
        last = n;
        break;
      }
    }
    if (ready) return Status::Ok();
    std::this_thread::sleep_for(50ms);
  }
  return Status::Error(
      fmt::format("the Redis Cluster was not ready within {} ms (node {})", timeout.count(), last));
}

Result<std::unique_ptr<LocalRedisCluster>> LocalRedisCluster::Start(const std::string& password) {
  std::unique_ptr<LocalRedisCluster> c(new LocalRedisCluster());
  c->password_ = password;
  for (int tries = 0; c->nodes_.size() < 6 && tries < 200; ++tries) {
    auto port = FreeLoopbackPort();
    if (!port.ok()) return port.status();
    if (*port >= 55536 || !LoopbackPortFree(*port + 10000)) continue;
    auto node = LocalRedis::Start({.port = *port, .password = password, .cluster = true});
    if (!node.ok()) return node.status();
    c->nodes_.push_back(std::move(*node));
  }
  if (c->nodes_.size() < 6) return Status::Error("no six free ports below 55536 for a cluster");
  if (Status s = FormRedisCluster(c->Addresses(), password, 60s); !s.ok()) return s;
  return c;
}

std::vector<std::string> LocalRedisCluster::Addresses() const {
  std::vector<std::string> out;
  for (const auto& n : nodes_) out.push_back(fmt::format("127.0.0.1:{}", n->port()));
  return out;
}

std::string LocalRedisCluster::Url() const {
  return fmt::format("redis+cluster://default:{}@127.0.0.1:{},127.0.0.1:{}", password_,
                     nodes_[0]->port(), nodes_[1]->port());
}

}  // namespace pdv::localsvc
