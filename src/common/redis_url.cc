#include "common/redis_url.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <tuple>

#include "common/host_port.h"

namespace pdv::redis {
namespace {

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
  bool sentinel = false;
  for (auto [scheme, tls, kind] :
       {std::tuple{"rediss+cluster://", true, 'c'}, std::tuple{"redis+cluster://", false, 'c'},
        std::tuple{"rediss+sentinel://", true, 's'}, std::tuple{"redis+sentinel://", false, 's'},
        std::tuple{"rediss://", true, ' '}, std::tuple{"redis://", false, ' '}}) {
    std::string_view s = scheme;
    if (url.rfind(s, 0) == 0) {
      e.tls = tls;
      e.cluster = kind == 'c';
      sentinel = kind == 's';
      url.remove_prefix(s.size());
      break;
    }
    if (s == "redis://") return Status::Error("not a redis:// or rediss:// URL");
  }
  if (auto q = url.find('?'); q != std::string_view::npos) {
    std::string_view query = url.substr(q + 1);
    url = url.substr(0, q);
    while (!query.empty()) {
      std::string_view param = query.substr(0, query.find('&'));
      query.remove_prefix(std::min(query.size(), param.size() + 1));
      auto eq = param.find('=');
      std::string_view name = param.substr(0, eq);
      auto value = PercentDecode(eq == std::string_view::npos ? "" : param.substr(eq + 1));
      if (!value.ok()) return Status::Error("redis URL: a malformed % escape in its query");
      if (name == "ca_cert") {
        e.ca_cert = *value;
      } else if (name == "sentinel_password") {
        e.sentinel_password = *value;
      } else {
        return Status::Error(fmt::format(
            "redis URL: unknown parameter '{}' (known: ca_cert, sentinel_password)", name));
      }
    }
  }
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
  if (auto slash = url.find('/'); slash != std::string_view::npos && sentinel) {
    e.sentinel_master = std::string(url.substr(slash + 1));
    url = url.substr(0, slash);
    if (e.sentinel_master.empty()) {
      return Status::Error("redis URL: redis+sentinel:// needs the master's name after /");
    }
  } else if (sentinel) {
    return Status::Error("redis URL: redis+sentinel:// needs the master's name after /");
  }
  if (auto slash = url.find('/'); slash != std::string_view::npos) {
    std::string_view db = url.substr(slash + 1);
    if (!db.empty()) {
      auto [end, ec] = std::from_chars(db.data(), db.data() + db.size(), e.db);
      if (ec != std::errc() || end != db.data() + db.size() || e.db < 0) {
        return Status::Error("redis URL: the database must be a number");
      }
    }
    url = url.substr(0, slash);
  }
  if (e.cluster && e.db != 0) return Status::Error("redis URL: a cluster has database 0 only");
  if (url.empty()) {
    e.seeds = {{e.host, e.port}};
    return e;
  }
  while (!url.empty()) {
    std::string_view one = url.substr(0, url.find(','));
    url.remove_prefix(std::min(url.size(), one.size() + 1));
    auto hp = ParseHostPort(one, 6379);
    if (!hp.ok()) return Status::Error("redis URL: " + hp.message());
    e.seeds.emplace_back(hp->host, hp->port);
    if (!e.cluster && !sentinel) {
      if (!url.empty()) {
        return Status::Error("redis URL: several hosts need redis+cluster:// or +sentinel://");
      }
      break;
    }
  }
  e.host = e.seeds.front().first;
  e.port = e.seeds.front().second;
  return e;
}

}  // namespace pdv::redis
