#include "localsvc/local_etcd.h"

#include <fmt/format.h>
#include <signal.h>

#include <thread>

#include "localsvc/launch_support.h"
#include "localsvc/loopback_http.h"

namespace pdv::localsvc {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

Result<std::unique_ptr<LocalEtcd>> LocalEtcd::Start(LocalEtcdOptions options) {
  std::unique_ptr<LocalEtcd> etcd(new LocalEtcd());
  auto account = ServerAccount("etcd");
  if (!account.ok()) return account.status();
  etcd->run_as_ = *account;
  auto dir = OpenServerDir(options.dir, "pdv-etcd", &etcd->scratch_);
  if (!dir.ok()) return dir.status();
  etcd->dir_ = *dir;
  if (Status s = GiveTo(etcd->dir_, etcd->run_as_); !s.ok()) return s;
  auto peer = FreeLoopbackPort();
  if (!peer.ok()) return peer.status();
  etcd->peer_port_ = *peer;
  auto port = LaunchOnPort(0, [&](int p) {
    etcd->client_port_ = p;
    return etcd->Launch();
  });
  if (!port.ok()) return port.status();
  return etcd;
}

std::string LocalEtcd::Endpoint() const { return fmt::format("127.0.0.1:{}", client_port_); }

Status LocalEtcd::Launch() {
  std::string client = fmt::format("http://127.0.0.1:{}", client_port_);
  std::string peer = fmt::format("http://127.0.0.1:{}", peer_port_);
  fs::path log = dir_ / "etcd.log";
  SpawnOptions spawn{.argv = {"etcd", "--name", "pdv0", "--data-dir", (dir_ / "data").string(),
                              "--listen-client-urls", client, "--advertise-client-urls", client,
                              "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                              "--initial-cluster", "pdv0=" + peer, "--initial-cluster-state", "new",
                              "--listen-metrics-urls", ""},
                     .log_file = log.string(),
                     .parent_death_signal = SIGTERM};
  if (run_as_) {
    spawn.uid = run_as_->uid;
    spawn.gid = run_as_->gid;
  }
  auto child = ChildProcess::Spawn(spawn);
  if (!child.ok()) return child.status();
  server_.emplace(std::move(*child));
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto health = LoopbackHttp(client_port_, "GET", "/health", {}, 500ms);
    if (health.ok() && health->status == 200 &&
        health->body.find("\"true\"") != std::string::npos) {
      return Status::Ok();
    }
    if (!server_->Running()) {
      return Status::Error(fmt::format("etcd on port {} exited during start-up: {}", client_port_,
                                       FileTail(log, 500)));
    }
    std::this_thread::sleep_for(20ms);
  }
  server_->Kill();
  return Status::Error(fmt::format("etcd on port {} was not healthy within 30 s: {}", client_port_,
                                   FileTail(log, 500)));
}

LocalEtcd::~LocalEtcd() {
  (void)StopServer(server_, SIGTERM, 10s, "etcd did not stop within 10 s");
}

}  // namespace pdv::localsvc
