#include "localsvc/local_patroni.h"

#include <dirent.h>
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "localsvc/launch_support.h"
#include "localsvc/loopback_http.h"
#include "pg/connection.h"

namespace pdv::localsvc {
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

constexpr char kBinDir[] = "/usr/lib/postgresql/15/bin";

// The processes whose parent is `pid` (from /proc).
std::vector<pid_t> ChildrenOf(pid_t pid) {
  std::vector<pid_t> out;
  DIR* proc = ::opendir("/proc");
  if (!proc) return out;
  while (dirent* e = ::readdir(proc)) {
    pid_t p = std::atoi(e->d_name);
    if (p <= 0) continue;
    std::ifstream stat(fmt::format("/proc/{}/stat", p));
    std::string line;
    std::getline(stat, line);
    // "pid (comm) state ppid ...": comm may hold spaces, so read after the last ')'.
    auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 1));
    std::string state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == pid) out.push_back(p);
  }
  ::closedir(proc);
  return out;
}

// The postmaster's pid from its data directory (0 when not running).
pid_t PostmasterPid(const fs::path& data) {
  std::ifstream in(data / "postmaster.pid");
  pid_t pid = 0;
  in >> pid;
  if (pid <= 0) return 0;
  // A stale file's pid may belong to another process by now: only a postgres whose command
  // line names this data directory counts.
  std::ifstream cmdline(fmt::format("/proc/{}/cmdline", pid));
  std::stringstream text;
  text << cmdline.rdbuf();
  return text.str().find(data.string()) != std::string::npos ? pid : 0;
}

// Stops the postmaster and every child at once: SIGSTOP first so that it forks no new
// backend while we collect its children.
void KillPostgres(const fs::path& data) {
  pid_t postmaster = PostmasterPid(data);
  if (postmaster == 0) return;
  ::kill(postmaster, SIGSTOP);
  for (pid_t child : ChildrenOf(postmaster)) ::kill(child, SIGKILL);
  ::kill(postmaster, SIGKILL);
}

bool FileHas(const fs::path& file, const std::string& text) {
  std::ifstream in(file);
  std::stringstream all;
  all << in.rdbuf();
  return all.str().find(text) != std::string::npos;
}

}  // namespace

Result<std::unique_ptr<LocalPatroniCluster>> LocalPatroniCluster::Start(
    LocalPatroniOptions options) {
  if (options.nodes < 1) return Status::Error("a Patroni cluster needs at least one node");
  if (!fs::exists(fs::path(kBinDir) / "postgres")) {
    return Status::Error(
        fmt::format("no PostgreSQL 15 server at {} (apt-get install postgresql-15)", kBinDir));
  }
  std::unique_ptr<LocalPatroniCluster> cluster(new LocalPatroniCluster());
  auto account = ServerAccount("postgres");
  if (!account.ok()) return account.status();
  cluster->run_as_ = *account;
  auto password = PasswordOrRandom(std::nullopt);
  auto replication = PasswordOrRandom(std::nullopt);
  if (!password.ok()) return password.status();
  if (!replication.ok()) return replication.status();
  cluster->password_ = *password;
  cluster->replication_password_ = *replication;
  auto dir = OpenServerDir(std::nullopt, "pdv-patroni", &cluster->scratch_);
  if (!dir.ok()) return dir.status();
  cluster->dir_ = *dir;
  if (options.scope.empty()) options.scope = cluster->dir_.filename().string();
  cluster->options_ = options;
  for (int i = 0; i < options.nodes; ++i) {
    Node node;
    node.dir = cluster->dir_ / fmt::format("node{}", i);
    fs::create_directories(node.dir);
    auto pg = FreeLoopbackPort();
    if (!pg.ok()) return pg.status();
    node.pg_port = *pg;
    auto rest = FreeLoopbackPort();
    if (!rest.ok()) return rest.status();
    node.rest_port = *rest;
    cluster->nodes_.push_back(std::move(node));
  }
  if (Status s = GiveTo(cluster->dir_, cluster->run_as_); !s.ok()) return s;
  // The first node bootstraps (initdb) the cluster; the others then clone it.
  for (int i = 0; i < options.nodes; ++i) {
    if (Status s = cluster->StartNode(i); !s.ok()) return s;
    if (i == 0) {
      auto leader = cluster->WaitForLeader(120s);
      if (!leader.ok()) return leader.status();
    }
  }
  if (Status s = cluster->WaitForReplicas(options.nodes - 1, 180s); !s.ok()) return s;
  return cluster;
}

std::string LocalPatroniCluster::Config(int index) const {
  const Node& node = nodes_[index];
  // Loops of a second: a failover takes about ttl + loop_wait after a crash.
  int retry_timeout = std::max(1, (options_.ttl_s - 1) / 2 - 1);
  std::string parameters;
  std::vector<std::pair<std::string, std::string>> all = {
      {"wal_level", "logical"},
      // Patroni's copies of logical slots on replicas need the primary to keep the catalog
      // rows they may decode: without feedback a failover slot is unusable.
      {"hot_standby_feedback", "on"},
      {"max_replication_slots", "10"},
      {"max_wal_senders", "10"},
      {"max_connections", "200"},
      {"password_encryption", "scram-sha-256"},
      {"fsync", "off"},
      {"full_page_writes", "off"}};
  all.insert(all.end(), options_.parameters.begin(), options_.parameters.end());
  for (const auto& [name, value] : all) {
    parameters += fmt::format("        {}: '{}'\n", name, value);
  }
  return fmt::format(
      R"(scope: {scope}
name: node{index}
restapi:
  listen: 127.0.0.1:{rest}
  connect_address: 127.0.0.1:{rest}
etcd3:
  hosts: {etcd}
bootstrap:
  dcs:
    ttl: {ttl}
    loop_wait: 1
    retry_timeout: {retry}
    # A replica whose WAL receipt a test held back (StopWalReceiver) may still be promoted:
    # the tests make the old primary's unreplicated changes on purpose.
    maximum_lag_on_failover: 104857600
    synchronous_mode: {synchronous}
    postgresql:
      use_pg_rewind: false
      use_slots: true
      parameters:
{parameters}  initdb:
  - encoding: UTF8
  - locale: C.UTF-8
  - auth: scram-sha-256
  pg_hba:
  - local all all scram-sha-256
  - host all all 127.0.0.1/32 scram-sha-256
  - host replication all 127.0.0.1/32 scram-sha-256
postgresql:
  listen: 127.0.0.1:{pg}
  connect_address: 127.0.0.1:{pg}
  data_dir: {dir}/data
  bin_dir: {bin}
  pgpass: {dir}/pgpass
  authentication:
    superuser: {{username: postgres, password: '{password}'}}
    replication: {{username: replicator, password: '{replication}'}}
    rewind: {{username: postgres, password: '{password}'}}
  parameters:
    unix_socket_directories: '{dir}'
    unix_socket_permissions: '0700'
)",
      fmt::arg("scope", options_.scope), fmt::arg("index", index), fmt::arg("rest", node.rest_port),
      fmt::arg("etcd", options_.etcd_endpoint), fmt::arg("ttl", options_.ttl_s),
      fmt::arg("retry", retry_timeout),
      fmt::arg("synchronous", options_.synchronous_mode ? "true" : "false"),
      fmt::arg("parameters", parameters), fmt::arg("pg", node.pg_port),
      fmt::arg("dir", node.dir.string()), fmt::arg("bin", kBinDir), fmt::arg("password", password_),
      fmt::arg("replication", replication_password_));
}

Status LocalPatroniCluster::StartNode(int index) {
  Node& node = nodes_[index];
  fs::path config = node.dir / "patroni.yml";
  if (Status s = WritePrivateFile(config, Config(index), run_as_); !s.ok()) return s;
  SpawnOptions spawn{.argv = {"patroni", config.string()},
                     .log_file = (node.dir / "patroni.log").string(),
                     // Patroni stops its PostgreSQL on SIGTERM: nothing outlives a crashed test.
                     .parent_death_signal = SIGTERM};
  if (run_as_) {
    spawn.uid = run_as_->uid;
    spawn.gid = run_as_->gid;
  }
  auto child = ChildProcess::Spawn(spawn);
  if (!child.ok()) return child.status();
  node.patroni.emplace(std::move(*child));
  return Status::Ok();
}

std::string LocalPatroniCluster::MultiHostUrl(const std::string& database) const {
  std::string hosts;
  for (const Node& n : nodes_)
    hosts += fmt::format("{}127.0.0.1:{}", hosts.empty() ? "" : ",", n.pg_port);
  return fmt::format("postgresql://postgres:{}@{}/{}?target_session_attrs=read-write", password_,
                     hosts, database);
}

std::string LocalPatroniCluster::NodeUrl(int node, const std::string& database) const {
  return fmt::format("postgresql://postgres:{}@127.0.0.1:{}/{}", password_, nodes_[node].pg_port,
                     database);
}

Result<std::vector<PatroniMember>> LocalPatroniCluster::Members() const {
  Status last = Status::Error("no live Patroni node");
  for (const Node& n : nodes_) {
    if (n.killed) continue;
    auto reply = LoopbackHttp(n.rest_port, "GET", "/cluster");
    if (!reply.ok()) {
      last = reply.status();
      continue;
    }
    auto json = nlohmann::json::parse(reply->body, nullptr, /*allow_exceptions=*/false);
    if (!json.is_object() || !json.contains("members") || !json["members"].is_array()) {
      last = Status::Error(fmt::format("Patroni /cluster on port {}: not the JSON expected: {}",
                                       n.rest_port, reply->body.substr(0, 200)));
      continue;
    }
    std::vector<PatroniMember> members;
    for (const auto& m : json["members"]) {
      members.push_back({.name = m.value("name", ""),
                         .role = m.value("role", ""),
                         .state = m.value("state", ""),
                         .port = m.value("port", 0),
                         .timeline = m.value("timeline", 0)});
    }
    return members;
  }
  return last;
}

Result<int> LocalPatroniCluster::WaitForLeader(std::chrono::milliseconds timeout,
                                               int except) const {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    for (int i = 0; i < size(); ++i) {
      if (i == except || nodes_[i].killed) continue;
      auto reply = LoopbackHttp(nodes_[i].rest_port, "GET", "/primary", {}, 500ms);
      // Patroni's /primary answers 200 as soon as it holds the leader key, before its
      // PostgreSQL has left recovery: only a read-write connection makes it the primary.
      if (reply.ok() && reply->status == 200 && AcceptsWrites(i)) return i;
    }
    std::this_thread::sleep_for(50ms);
  }
  return Status::Error(fmt::format("no Patroni leader within {} ms: {}", timeout.count(),
                                   FileTail(nodes_[0].dir / "patroni.log", 400)));
}

bool LocalPatroniCluster::AcceptsWrites(int node) const {
  auto conn = pg::Connection::Connect(NodeUrl(node, "postgres") + "?connect_timeout=2");
  if (!conn.ok()) return false;
  auto r = conn->Exec("SELECT NOT pg_is_in_recovery()");
  return r.ok() && r->rows() == 1 && r->get(0, 0) == "t";
}

Status LocalPatroniCluster::WaitForReplicas(int count, std::chrono::milliseconds timeout) const {
  auto deadline = Clock::now() + timeout;
  std::string seen;
  while (Clock::now() < deadline) {
    int streaming = 0;
    for (int i = 0; i < size(); ++i) {
      if (nodes_[i].killed) continue;
      // /replica answers 200 on a running replica that streams from the leader.
      auto reply = LoopbackHttp(nodes_[i].rest_port, "GET", "/replica", {}, 500ms);
      if (reply.ok() && reply->status == 200) ++streaming;
      if (reply.ok()) seen = reply->body.substr(0, 300);
    }
    if (streaming >= count) return Status::Ok();
    std::this_thread::sleep_for(100ms);
  }
  return Status::Error(fmt::format("fewer than {} Patroni replicas streaming within {} ms: {}",
                                   count, timeout.count(), seen));
}

Status LocalPatroniCluster::SetPermanentSlot(const std::string& slot, const std::string& database) {
  nlohmann::json patch = {
      {"slots", {{slot, {{"type", "logical"}, {"database", database}, {"plugin", "pgoutput"}}}}}};
  auto leader = WaitForLeader(30s);
  if (!leader.ok()) return leader.status();
  auto reply = LoopbackHttp(nodes_[*leader].rest_port, "PATCH", "/config", patch.dump());
  if (!reply.ok()) return reply.status();
  if (reply->status != 200) {
    return Status::Error(
        fmt::format("Patroni PATCH /config: HTTP {}: {}", reply->status, reply->body));
  }
  return Status::Ok();
}

Status LocalPatroniCluster::WaitForSlotOnReplicas(const std::string& slot,
                                                  std::chrono::milliseconds timeout) const {
  auto deadline = Clock::now() + timeout;
  std::string ready = fmt::format("Logical slot {} is safe to be used after a failover", slot);
  while (Clock::now() < deadline) {
    auto leader = WaitForLeader(std::chrono::duration_cast<std::chrono::milliseconds>(
        std::max(Clock::duration(0), deadline - Clock::now())));
    if (!leader.ok()) return leader.status();
    bool all = true;
    for (int i = 0; i < size() && all; ++i) {
      if (i == *leader || nodes_[i].killed) continue;
      all = FileHas(nodes_[i].dir / "patroni.log", ready);
    }
    if (all) return Status::Ok();
    std::this_thread::sleep_for(100ms);
  }
  return Status::Error(fmt::format("the replicas' copies of slot {} were not ready within {} ms",
                                   slot, timeout.count()));
}

namespace {
// The walreceiver of the PostgreSQL in `data` (0: none).
pid_t WalReceiverPid(const fs::path& data) {
  pid_t postmaster = PostmasterPid(data);
  if (postmaster == 0) return 0;
  for (pid_t child : ChildrenOf(postmaster)) {
    std::ifstream cmdline(fmt::format("/proc/{}/cmdline", child));
    std::stringstream text;
    text << cmdline.rdbuf();
    if (text.str().find("walreceiver") != std::string::npos) return child;
  }
  return 0;
}
}  // namespace

Status LocalPatroniCluster::StopWalReceiver(int node) {
  pid_t pid = WalReceiverPid(nodes_[node].dir / "data");
  if (pid == 0) return Status::Error(fmt::format("node{} has no walreceiver", node));
  ::kill(pid, SIGSTOP);
  return Status::Ok();
}

void LocalPatroniCluster::KillWalReceiver(int node) {
  if (pid_t pid = WalReceiverPid(nodes_[node].dir / "data"); pid != 0) ::kill(pid, SIGKILL);
}

void LocalPatroniCluster::KillNode(int node) {
  Node& n = nodes_[node];
  if (n.patroni) n.patroni->Kill();
  KillPostgres(n.dir / "data");
  n.killed = true;
}

LocalPatroniCluster::~LocalPatroniCluster() {
  for (Node& n : nodes_) {
    if (n.patroni && n.patroni->Running()) n.patroni->Signal(SIGTERM);
  }
  for (Node& n : nodes_) {
    if (n.patroni && !n.patroni->Wait(30s)) n.patroni->Kill();
    // Whatever Patroni did not stop (it was killed, or timed out).
    KillPostgres(n.dir / "data");
  }
}

}  // namespace pdv::localsvc
