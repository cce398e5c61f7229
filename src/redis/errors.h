#pragma once

// What a Redis failure means, as error codes (Status::code()) and predicates on them:
// the one owner of these names, for both clients (client.h, async_client.h) and their
// callers.

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/status.h"

namespace pdv::redis {

// The connection is gone or unusable (refused, cut, timed out, a protocol error, no
// server known yet): reconnect and retry later.
inline constexpr char kConnectionError[] = "connection";
// An error reply from the server ("redis: <its text>").
inline constexpr char kReplyError[] = "reply";
// The start of the error a fenced script returns (redis.error_reply('FENCED ...'): the
// cache's scripts, cache/scripts.cc) when a newer holder writes there.
inline constexpr char kFencedReply[] = "FENCED";

// True when `s` carries kConnectionError. Pure.
bool IsConnectionError(const Status& s);

// True when `s` is a script's FENCED refusal: a newer holder writes there, this one must
// stop. Pure.
bool IsFenced(const Status& s);

// True when `s` is the server's NOSCRIPT reply to an EVALSHA (the script cache was
// flushed, or this node never loaded it): load it and send the call again. Pure.
bool IsNoScript(const Status& s);

// The Status of the error reply `text` that the server at `where` ("host:port") sent:
// "redis: <text>", code kReplyError. A cluster redirection (MOVED, ASK) from a server not
// reached as a cluster node (`cluster_node` false: a redis:// or rediss:// URL) says
// instead that the server is a Redis Cluster node and that the URL should be a
// redis+cluster:// one. Pure.
Status ErrorReply(std::string_view text, std::string_view where, bool cluster_node);

// "redis: MOVED 3999 127.0.0.1:6381" -> {"MOVED", "127.0.0.1:6381"} (or ASK); nullopt for
// anything else. Pure.
std::optional<std::pair<std::string, std::string>> ClusterRedirection(const Status& s);

}  // namespace pdv::redis
