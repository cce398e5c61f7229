#include "redis/errors.h"

#include <fmt/format.h>

namespace pdv::redis {
namespace {

constexpr const char* kRedirections[] = {"MOVED ", "ASK "};

// "MOVED 3999 127.0.0.1:6381" -> {"MOVED", "127.0.0.1:6381"} (or ASK).
std::optional<std::pair<std::string, std::string>> Redirection(std::string_view text) {
  for (const char* kind : kRedirections) {
    if (text.rfind(kind, 0) != 0) continue;
    auto space = text.find(' ', std::string_view(kind).size());
    if (space == std::string_view::npos) return std::nullopt;
    return std::pair{std::string(kind, std::string_view(kind).size() - 1),
                     std::string(text.substr(space + 1))};
  }
  return std::nullopt;
}

}  // namespace

bool IsConnectionError(const Status& s) { return s.code() == kConnectionError; }

bool IsFenced(const Status& s) {
  return !s.ok() && s.message().find(kFencedReply) != std::string::npos;
}

bool IsNoScript(const Status& s) {
  return !s.ok() && s.code() == kReplyError && s.message().find("NOSCRIPT") != std::string::npos;
}

Status ErrorReply(std::string_view text, std::string_view where, bool cluster_node) {
  if (!cluster_node && Redirection(text)) {
    return Status::Error(
        fmt::format("redis: {} is a Redis Cluster node (it answered {}): use a redis+cluster:// "
                    "URL (rediss+cluster:// with TLS)",
                    where, text),
        kReplyError);
  }
  return Status::Error(fmt::format("redis: {}", text), kReplyError);
}

std::optional<std::pair<std::string, std::string>> ClusterRedirection(const Status& s) {
  if (s.ok() || s.code() != kReplyError) return std::nullopt;
  std::string_view m = s.message();
  if (m.rfind("redis: ", 0) == 0) m.remove_prefix(7);
  return Redirection(m);
}

}  // namespace pdv::redis
