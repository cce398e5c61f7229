#include "redis/async_cluster.h"

#include <fmt/format.h>
#include <hiredis/hiredis.h>

#include <algorithm>

#include "redis/client.h"
#include "redis/cluster_slots.h"

namespace pdv::redis {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

AsyncCluster::AsyncCluster(asio::io_context& io, Endpoint endpoint,
                           std::chrono::milliseconds timeout)
    : io_(io),
      endpoint_(std::move(endpoint)),
      timeout_(timeout),
      watch_(io),
      refresher_(io, std::chrono::milliseconds(200)) {}

AsyncCluster::~AsyncCluster() = default;

void AsyncCluster::Start() {
  Refresh();
  Watch();
}

void AsyncCluster::Watch() {
  watch_.expires_after(std::chrono::milliseconds(500));
  std::weak_ptr<AsyncCluster> weak = weak_from_this();
  watch_.async_wait([weak](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || self->closed_) return;
    bool stale = Clock::now() - self->refresher_.started_at() > std::chrono::seconds(5);
    if (stale || !self->AllMastersConnected()) self->Refresh();
    self->ReconnectMasters();
    self->Watch();
  });
}

void AsyncCluster::ReconnectMasters() {
  // A client connects when a command is sent to it. A master's connection lost while no
  // request needed it (a cut link: a balancer sends this replica nothing while it is not
  // ready) would stay lost, and readiness with it; a PING reconnects it (its deadline
  // bounds a connect that gets no answer).
  for (const auto& [name, client] : nodes_) {
    if (client->connected() ||
        std::find(slot_owner_.begin(), slot_owner_.end(), name) == slot_owner_.end()) {
      continue;
    }
    client->Command({"PING"}, [](const Status&, redisReply*) {});
  }
}

void AsyncCluster::Refresh() {
  if (closed_) return;
  std::vector<std::string> known;
  for (const auto& [name, client] : nodes_) known.push_back(name);
  // CLUSTER SLOTS blocks (connects, waits): off the loop, the result handed back to it.
  refresher_.Request(
      [endpoint = endpoint_, known] {
        return ClusterSlotOwners(endpoint, std::chrono::milliseconds(1000), known);
      },
      [weak = weak_from_this()](Result<std::vector<std::string>> owners) {
        auto self = weak.lock();
        if (!self || !owners.ok() || *owners == self->slot_owner_) return;
        bool had_map = !self->slot_owner_.empty();
        self->slot_owner_ = std::move(*owners);
        if (had_map && self->tracking_) self->tracking_->on_reset();
      });
}

AsyncClient& AsyncCluster::Node(const std::string& name) {
  auto& client = nodes_[name];
  if (!client) {
    Endpoint e = endpoint_;
    auto colon = name.rfind(':');
    e.host = name.substr(0, colon);
    e.port = std::stoi(name.substr(colon + 1));
    // Still a cluster's node: its MOVED and ASK are redirections to follow.
    client = std::make_shared<AsyncClient>(io_, e, timeout_);
    if (tracking_) client->EnableTracking(*tracking_);
  }
  return *client;
}

AsyncClient* AsyncCluster::OwnerClient(std::string_view key) const {
  if (slot_owner_.empty()) return nullptr;
  auto it = nodes_.find(slot_owner_[KeySlot(key)]);
  return it == nodes_.end() ? nullptr : it->second.get();
}

void AsyncCluster::EnableTracking(TrackingHandlers handlers) {
  tracking_ = std::move(handlers);
  for (auto& [name, client] : nodes_) client->EnableTracking(*tracking_);
}

bool AsyncCluster::Tracked(std::string_view key) {
  AsyncClient* owner = OwnerClient(key);
  return owner && owner->Tracked(key);
}

bool AsyncCluster::TrackingOn(std::string_view key) const {
  const AsyncClient* owner = OwnerClient(key);
  return owner && owner->TrackingOn(key);
}

void AsyncCluster::Command(const std::vector<std::string_view>& args, Callback done) {
  std::string owner;
  if (!slot_owner_.empty()) {
    if (auto key = CommandKey(args)) {
      owner = slot_owner_[KeySlot(*key)];
    } else {
      for (const auto& o : slot_owner_) {
        if (!o.empty()) {
          owner = o;
          break;
        }
      }
    }
  }
  if (owner.empty()) {
    Refresh();
    return done(Status::Error("redis: the cluster's slot map is not known yet", kConnectionError),
                nullptr);
  }
  Send(owner, std::vector<std::string>(args.begin(), args.end()), std::move(done), 0);
}

void AsyncCluster::Send(const std::string& node, std::vector<std::string> args, Callback done,
                        int hops) {
  std::vector<std::string_view> views(args.begin(), args.end());
  auto self = shared_from_this();
  // The arguments are kept only for a redirection (rare); the common path copies them once.
  auto resend = std::make_shared<std::vector<std::string>>(std::move(args));
  Node(node).Command(views, [this, self, resend, done = std::move(done), hops](
                                const Status& s, redisReply* r) mutable {
    if (s.ok()) return done(s, r);
    if (IsConnectionError(s)) {
      Refresh();  // a failover may have moved the node's slots
      return done(s, r);
    }
    auto redirect = ClusterRedirection(s);
    if (!redirect || hops >= 2) return done(s, r);
    Refresh();
    if (redirect->first == "ASK") {
      Node(redirect->second).Command({"ASKING"}, [](const Status&, redisReply*) {});
    }
    Send(redirect->second, std::move(*resend), std::move(done), hops + 1);
  });
}

bool AsyncCluster::connected() const { return AllMastersConnected(); }

bool AsyncCluster::AllMastersConnected() const {
  if (slot_owner_.empty()) return false;
  // Every master this loop talks to is connected (a lost one is being failed over).
  bool any = false;
  for (const auto& [name, client] : nodes_) {
    bool master = std::find(slot_owner_.begin(), slot_owner_.end(), name) != slot_owner_.end();
    if (master && !client->connected()) return false;
    any = any || (master && client->connected());
  }
  return any;
}

void AsyncCluster::Close() {
  closed_ = true;
  watch_.cancel();
  refresher_.Close();
  for (auto& [name, client] : nodes_) client->Close();
}

}  // namespace pdv::redis
