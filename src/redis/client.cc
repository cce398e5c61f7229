#include "redis/client.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "redis/cluster_slots.h"
#include "redis/connection.h"

namespace pdv::redis {
namespace {

constexpr int kMaxRedirections = 5;

std::string Upper(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

// A reply made of RESP text (":3\r\n"): for counts added up from several nodes.
Reply MadeReply(const std::string& resp) {
  ReplyReader reader;
  reader.Feed(resp.data(), resp.size());
  auto r = reader.Next();
  return Reply(r.ok() ? r->release() : nullptr);
}

using Args = std::vector<std::string>;

std::vector<std::string_view> Views(const Args& args) {
  return std::vector<std::string_view>(args.begin(), args.end());
}

}  // namespace

struct Client::State {
  Endpoint endpoint;
  std::chrono::milliseconds timeout;
  std::optional<Connection> single;

  // A cluster: a connection per node ("host:port"), opened when first needed, and the
  // master of each slot.
  std::map<std::string, Connection> nodes;
  std::vector<std::string> slot_owner = std::vector<std::string>(kClusterSlots);
  std::deque<Args> queued;
  std::deque<Result<Reply>> ready;

  Result<Connection*> Node(const std::string& name) {
    if (auto it = nodes.find(name); it != nodes.end()) return &it->second;
    auto colon = name.rfind(':');
    int port = 0;
    if (colon == std::string::npos ||
        std::from_chars(name.data() + colon + 1, name.data() + name.size(), port).ec !=
            std::errc()) {
      return Status::Error("redis: bad cluster node address " + name, kConnectionError);
    }
    auto conn = Connection::Open(endpoint, timeout, name.substr(0, colon), port);
    if (!conn.ok()) return conn.status();
    return &nodes.emplace(name, std::move(*conn)).first->second;
  }

  // CLUSTER SLOTS from the first node (known or seed) that answers.
  Status RefreshSlots() {
    std::vector<std::string> ask;
    for (const auto& [name, conn] : nodes) ask.push_back(name);
    for (const auto& [host, port] : endpoint.seeds) ask.push_back(fmt::format("{}:{}", host, port));
    Status last = Status::Error("redis: no cluster node answered", kConnectionError);
    for (const auto& name : ask) {
      auto conn = Node(name);
      if (!conn.ok()) {
        last = conn.status();
        continue;
      }
      auto r = (*conn)->Command({"CLUSTER", "SLOTS"});
      if (!r.ok()) {
        last = r.status();
        if (IsConnectionError(r.status())) nodes.erase(name);
        continue;
      }
      std::string asked_host = name.substr(0, name.rfind(':'));
      for (size_t i = 0; i < r->elements(); ++i) {
        const redisReply* range = r->element(i);
        if (range->type != REDIS_REPLY_ARRAY || range->elements < 3) continue;
        const redisReply* master = range->element[2];
        if (master->type != REDIS_REPLY_ARRAY || master->elements < 2) continue;
        std::string host(master->element[0]->str, master->element[0]->len);
        if (host.empty()) host = asked_host;
        std::string owner = fmt::format("{}:{}", host, master->element[1]->integer);
        for (long long s = range->element[0]->integer;
             s <= range->element[1]->integer && s < kClusterSlots; ++s) {
          slot_owner[static_cast<size_t>(s)] = owner;
        }
      }
      return Status::Ok();
    }
    return last;
  }

  std::string OwnerOf(const std::vector<std::string_view>& args) {
    if (auto key = CommandKey(args)) {
      const std::string& owner = slot_owner[KeySlot(*key)];
      if (!owner.empty()) return owner;
    }
    for (const auto& owner : slot_owner) {
      if (!owner.empty()) return owner;
    }
    return fmt::format("{}:{}", endpoint.host, endpoint.port);
  }

  void Forget(const std::string& node) {
    nodes.erase(node);
    (void)RefreshSlots();  // a failover may have moved its slots
  }

  // One command, following MOVED (the map refreshed) and ASK (once, with ASKING).
  Result<Reply> Run(const std::vector<std::string_view>& args) {
    std::string name = Upper(args.empty() ? "" : args[0]);
    if (name == "SCRIPT") return ToEveryMaster(args);
    if ((name == "UNLINK" || name == "DEL" || name == "EXISTS") && args.size() > 2) {
      return PerKey(args);
    }
    std::string node = OwnerOf(args);
    for (int attempt = 0; attempt <= kMaxRedirections; ++attempt) {
      auto conn = Node(node);
      if (!conn.ok()) {
        Forget(node);
        return conn.status();
      }
      auto r = (*conn)->Command(args);
      if (!r.ok() && IsConnectionError(r.status())) {
        Forget(node);
        return r.status();
      }
      auto redirect = ClusterRedirection(r.status());
      if (!redirect) return r;
      if (redirect->first == "ASK") {
        auto target = Node(redirect->second);
        if (!target.ok()) return target.status();
        (*target)->Append({"ASKING"});
        (*target)->Append(args);
        (void)(*target)->GetReply();
        return (*target)->GetReply();
      }
      (void)RefreshSlots();
      node = redirect->second;
    }
    return Status::Error("redis: too many cluster redirections", kConnectionError);
  }

  // SCRIPT LOAD (and the like): the script must be on every master.
  Result<Reply> ToEveryMaster(const std::vector<std::string_view>& args) {
    std::vector<std::string> masters(slot_owner.begin(), slot_owner.end());
    std::sort(masters.begin(), masters.end());
    masters.erase(std::unique(masters.begin(), masters.end()), masters.end());
    std::optional<Result<Reply>> first;
    for (const auto& m : masters) {
      if (m.empty()) continue;
      auto conn = Node(m);
      if (!conn.ok()) return conn.status();
      auto r = (*conn)->Command(args);
      if (!r.ok()) return r;
      if (!first) first = std::move(r);
    }
    if (!first) return Status::Error("redis: no cluster master known", kConnectionError);
    return std::move(*first);
  }

  // A multi-key UNLINK/DEL/EXISTS whose keys may live in several slots: one per key,
  // pipelined per node, the counts added.
  Result<Reply> PerKey(const std::vector<std::string_view>& args) {
    std::vector<Args> each;
    for (size_t i = 1; i < args.size(); ++i)
      each.push_back({std::string(args[0]), std::string(args[i])});
    long long total = 0;
    for (auto& r : RunBatch(each)) {
      if (!r.ok()) return r.status();
      total += r->integer();
    }
    return MadeReply(fmt::format(":{}\r\n", total));
  }

  // Commands pipelined per node; the replies in the commands' order.
  std::vector<Result<Reply>> RunBatch(const std::vector<Args>& commands) {
    std::vector<std::optional<Result<Reply>>> out(commands.size());
    std::map<std::string, std::vector<size_t>> by_node;
    for (size_t i = 0; i < commands.size(); ++i) {
      auto views = Views(commands[i]);
      std::string name = Upper(views.empty() ? "" : views[0]);
      bool special = name == "SCRIPT" ||
                     ((name == "UNLINK" || name == "DEL" || name == "EXISTS") && views.size() > 2);
      if (special) {
        out[i] = Run(views);
      } else {
        by_node[OwnerOf(views)].push_back(i);
      }
    }
    std::vector<size_t> again;
    for (const auto& [node, indexes] : by_node) {
      auto conn = Node(node);
      if (!conn.ok()) {
        for (size_t i : indexes) out[i] = conn.status();
        Forget(node);
        continue;
      }
      for (size_t i : indexes) (*conn)->Append(Views(commands[i]));
      bool lost = false;
      for (size_t i : indexes) {
        auto r = (*conn)->GetReply();
        if (!r.ok() && IsConnectionError(r.status())) lost = true;
        if (ClusterRedirection(r.status())) {
          again.push_back(i);
        } else {
          out[i] = std::move(r);
        }
      }
      if (lost) Forget(node);
    }
    if (!again.empty()) (void)RefreshSlots();
    for (size_t i : again) out[i] = Run(Views(commands[i]));
    std::vector<Result<Reply>> results;
    results.reserve(out.size());
    for (auto& r : out) results.push_back(std::move(*r));
    return results;
  }

  // "host:port" of the nodes CLUSTER NODES flags as failing (fail, or fail? from this
  // node's view).
  std::set<std::string> FailingNodes(Connection& conn) {
    std::set<std::string> failing;
    auto r = conn.Command({"CLUSTER", "NODES"});
    if (!r.ok() || r->type() != REDIS_REPLY_STRING) return failing;
    std::istringstream lines(std::string(r->str()));
    for (std::string line; std::getline(lines, line);) {
      std::istringstream fields(line);
      std::string id, address, flags;
      fields >> id >> address >> flags;
      if (flags.find("fail") == std::string::npos) continue;
      failing.insert(address.substr(0, address.find('@')));
    }
    return failing;
  }

  Status WaitForReplicasOf(Connection& master, const std::string& name,
                           const std::set<std::string>& failing, std::chrono::milliseconds t) {
    auto role = master.Command({"ROLE"});
    if (!role.ok()) return role.status();
    if (role->type() != REDIS_REPLY_ARRAY || role->elements() < 3 ||
        role->element(2)->type != REDIS_REPLY_ARRAY) {
      return Status::Error(fmt::format("redis: {} is not a master (failover in progress)", name),
                           kConnectionError);
    }
    const redisReply* replicas = role->element(2);
    long long wanted = 0;
    for (size_t i = 0; i < replicas->elements; ++i) {
      const redisReply* r = replicas->element[i];
      if (r->type != REDIS_REPLY_ARRAY || r->elements < 2) continue;
      std::string address =
          fmt::format("{}:{}", std::string_view(r->element[0]->str, r->element[0]->len),
                      std::string_view(r->element[1]->str, r->element[1]->len));
      if (!failing.contains(address)) ++wanted;
    }
    if (wanted == 0) return Status::Ok();
    std::string n = std::to_string(wanted), ms = std::to_string(t.count());
    auto acked = master.Command({"WAIT", n, ms});
    if (!acked.ok()) return acked.status();
    if (acked->integer() < wanted) {
      return Status::Error(
          fmt::format("redis: {} of {} replicas of {} acknowledged the writes within {} ms",
                      acked->integer(), wanted, name.empty() ? "the primary" : name, t.count()),
          kConnectionError);
    }
    return Status::Ok();
  }

  Status WaitForReplicas(std::chrono::milliseconds t) {
    if (single) return WaitForReplicasOf(*single, "", {}, t);
    std::set<std::string> masters(slot_owner.begin(), slot_owner.end());
    masters.erase("");
    std::set<std::string> failing;
    bool asked = false;
    for (const auto& m : masters) {
      auto conn = Node(m);
      if (!conn.ok()) {
        Forget(m);
        return conn.status();
      }
      if (!asked) {
        failing = FailingNodes(**conn);
        asked = true;
      }
      Status s = WaitForReplicasOf(**conn, m, failing, t);
      if (!s.ok()) {
        if (IsConnectionError(s)) Forget(m);
        return s;
      }
    }
    return Status::Ok();
  }
};

Client::Client(std::unique_ptr<State> state) : state_(std::move(state)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

pdv::Result<Client> Client::Connect(const std::string& url, std::chrono::milliseconds timeout) {
  auto endpoint = ParseRedisUrl(url);
  if (!endpoint.ok()) return endpoint.status();
  auto state = std::make_unique<State>();
  state->endpoint = *endpoint;
  state->timeout = timeout;
  if (endpoint->sentinel()) {
    auto primary = SentinelPrimary(*endpoint, timeout);
    if (!primary.ok()) return primary.status();
    auto conn = Connection::Open(*endpoint, timeout, primary->first, primary->second);
    if (!conn.ok()) return conn.status();
    state->single.emplace(std::move(*conn));
  } else if (!endpoint->cluster) {
    auto conn = Connection::Open(*endpoint, timeout);
    if (!conn.ok()) return conn.status();
    state->single.emplace(std::move(*conn));
  } else if (Status s = state->RefreshSlots(); !s.ok()) {
    return s;
  }
  return Client(std::move(state));
}

bool Client::cluster() const { return !state_->single; }

pdv::Status Client::WaitForReplicas(std::chrono::milliseconds timeout) {
  return state_->WaitForReplicas(timeout);
}

pdv::Result<Reply> Client::Command(const std::vector<std::string_view>& args) {
  if (state_->single) return state_->single->Command(args);
  return state_->Run(args);
}

void Client::Append(const std::vector<std::string_view>& args) {
  if (state_->single) return state_->single->Append(args);
  state_->queued.emplace_back(args.begin(), args.end());
}

pdv::Result<Reply> Client::GetReply() {
  if (state_->single) return state_->single->GetReply();
  if (state_->ready.empty() && !state_->queued.empty()) {
    std::vector<Args> batch(state_->queued.begin(), state_->queued.end());
    state_->queued.clear();
    for (auto& r : state_->RunBatch(batch)) state_->ready.push_back(std::move(r));
  }
  if (state_->ready.empty()) return Status::Error("redis: no command pending", kConnectionError);
  auto r = std::move(state_->ready.front());
  state_->ready.pop_front();
  return r;
}

pdv::Result<std::pair<std::string, int>> SentinelPrimary(const Endpoint& endpoint,
                                                         std::chrono::milliseconds timeout) {
  Endpoint sentinel = endpoint;
  sentinel.user.clear();
  sentinel.password = endpoint.sentinel_password;
  sentinel.db = 0;
  sentinel.cluster = false;
  Status last = Status::Error("redis: no Sentinel answered", kConnectionError);
  for (const auto& [host, port] : endpoint.seeds) {
    auto conn = Connection::Open(sentinel, timeout, host, port);
    if (!conn.ok()) {
      last = conn.status();
      continue;
    }
    auto r = conn->Command({"SENTINEL", "get-master-addr-by-name", endpoint.sentinel_master});
    if (!r.ok() || r->type() != REDIS_REPLY_ARRAY || r->elements() != 2) {
      last = r.ok() ? Status::Error(fmt::format("redis: Sentinel {}:{} knows no master {}", host,
                                                port, endpoint.sentinel_master),
                                    kConnectionError)
                    : r.status();
      continue;
    }
    std::string primary_host(r->element(0)->str, r->element(0)->len);
    int primary_port = std::atoi(std::string(r->element(1)->str, r->element(1)->len).c_str());
    auto primary = Connection::Open(endpoint, timeout, primary_host, primary_port);
    if (!primary.ok()) {
      last = primary.status();
      continue;
    }
    auto role = primary->Command({"ROLE"});
    if (!role.ok() || role->elements() == 0 ||
        std::string_view(role->element(0)->str, role->element(0)->len) != "master") {
      last = Status::Error(fmt::format("redis: {}:{} is not a primary yet (failover in progress)",
                                       primary_host, primary_port),
                           kConnectionError);
      continue;
    }
    return std::pair{primary_host, primary_port};
  }
  return last;
}

pdv::Result<std::vector<std::string>> ClusterSlotOwners(const Endpoint& endpoint,
                                                        std::chrono::milliseconds timeout,
                                                        const std::vector<std::string>& nodes) {
  Client::State state;
  state.endpoint = endpoint;
  state.timeout = timeout;
  std::vector<std::pair<std::string, int>> seeds;
  for (const auto& n : nodes) {
    auto colon = n.rfind(':');
    if (colon != std::string::npos)
      seeds.emplace_back(n.substr(0, colon), std::stoi(n.substr(colon + 1)));
  }
  seeds.insert(seeds.end(), endpoint.seeds.begin(), endpoint.seeds.end());
  state.endpoint.seeds = seeds;
  if (Status s = state.RefreshSlots(); !s.ok()) return s;
  return state.slot_owner;
}

}  // namespace pdv::redis
