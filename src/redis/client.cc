#include "redis/client.h"

#include <fmt/format.h>

#include <charconv>

#include "common/host_port.h"

namespace pdv::redis {
namespace {

constexpr char kConnection[] = "connection";
constexpr char kReplyError[] = "reply";

// %XX escapes (a password may hold ':' or '@').
pdv::Result<std::string> PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    int value = 0;
    if (i + 2 >= s.size()) return Status::Error("bad % escape");
    auto [end, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, value, 16);
    if (ec != std::errc() || end != s.data() + i + 3) return Status::Error("bad % escape");
    out += static_cast<char>(value);
    i += 2;
  }
  return out;
}

}  // namespace

pdv::Result<Endpoint> ParseRedisUrl(std::string_view url) {
  Endpoint e;
  if (url.rfind("redis://", 0) != 0)
    return Status::Error(fmt::format("not a redis:// URL: {}", url));
  url.remove_prefix(8);
  if (auto at = url.rfind('@'); at != std::string_view::npos) {
    std::string_view auth = url.substr(0, at);
    auto colon = auth.find(':');
    auto user = PercentDecode(colon == std::string_view::npos ? "" : auth.substr(0, colon));
    auto password = PercentDecode(colon == std::string_view::npos ? auth : auth.substr(colon + 1));
    if (!user.ok() || !password.ok()) {
      return Status::Error("redis URL: a malformed % escape in its user or password");
    }
    e.user = *user;
    e.password = *password;
    url.remove_prefix(at + 1);
  }
  if (auto slash = url.find('/'); slash != std::string_view::npos) {
    std::string_view db = url.substr(slash + 1);
    if (!db.empty()) std::from_chars(db.data(), db.data() + db.size(), e.db);
    url = url.substr(0, slash);
  }
  if (url.empty()) return e;
  auto hp = ParseHostPort(url, e.port);
  if (!hp.ok()) return Status::Error("redis URL: " + hp.message());
  e.host = hp->host;
  e.port = hp->port;
  return e;
}

std::vector<std::string_view> AuthCommand(const Endpoint& endpoint) {
  if (endpoint.password.empty()) return {};
  if (endpoint.user.empty()) return {"AUTH", endpoint.password};
  return {"AUTH", endpoint.user, endpoint.password};
}

pdv::Result<Client> Client::Connect(const std::string& url, std::chrono::milliseconds timeout) {
  auto endpoint = ParseRedisUrl(url);
  if (!endpoint.ok()) return endpoint.status();
  timeval tv{.tv_sec = timeout.count() / 1000, .tv_usec = (timeout.count() % 1000) * 1000};
  Client client(redisConnectWithTimeout(endpoint->host.c_str(), endpoint->port, tv));
  if (!client.ctx_ || client.ctx_->err) {
    return Status::Error(
        fmt::format("redis: cannot connect to {}:{}: {}", endpoint->host, endpoint->port,
                    client.ctx_ ? client.ctx_->errstr : "no memory"),
        kConnection);
  }
  redisSetTimeout(client.ctx_.get(), tv);
  if (auto auth = AuthCommand(*endpoint); !auth.empty()) {
    auto r = client.Command(auth);
    if (!r.ok()) return r.status();
  }
  if (endpoint->db != 0) {
    auto r = client.Command({"SELECT", std::to_string(endpoint->db)});
    if (!r.ok()) return r.status();
  }
  return client;
}

Status Client::ContextError(std::string_view what) {
  return Status::Error(fmt::format("redis: {}: {}", what, ctx_->errstr), kConnection);
}

void Client::Append(const std::vector<std::string_view>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (auto a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  redisAppendCommandArgv(ctx_.get(), static_cast<int>(args.size()), argv.data(), lens.data());
}

pdv::Result<Reply> Client::GetReply() {
  void* raw = nullptr;
  if (redisGetReply(ctx_.get(), &raw) != REDIS_OK || raw == nullptr) return ContextError("reply");
  Reply reply(static_cast<redisReply*>(raw));
  if (reply.type() == REDIS_REPLY_ERROR) {
    return Status::Error(fmt::format("redis: {}", reply.str()), kReplyError);
  }
  return reply;
}

pdv::Result<Reply> Client::Command(const std::vector<std::string_view>& args) {
  Append(args);
  return GetReply();
}

bool IsConnectionError(const Status& s) { return s.code() == kConnection; }

}  // namespace pdv::redis
