#pragma once

// One Redis connection, plain or TLS: its own socket I/O, hiredis's reply parser.

#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/redis_url.h"
#include "common/status.h"
#include "redis/errors.h"
#include "redis/reply.h"
#include "redis/tls.h"

namespace pdv::redis {

// Not thread-safe; move-only. Errors carry code kConnectionError when the connection is
// gone (reconnect and retry) and kReplyError for an error reply from the server
// (redis/errors.h); a redirection from a server the endpoint does not call a cluster node
// is an error saying so (ErrorReply). `timeout` bounds the connect and each read or write.
class Connection {
 public:
  // To `host`:`port` (else the endpoint's), with its TLS, AUTH and SELECT.
  static pdv::Result<Connection> Open(const Endpoint& endpoint, std::chrono::milliseconds timeout,
                                      const std::string& host = "", int port = 0);
  Connection(Connection&&) noexcept = default;
  Connection& operator=(Connection&&) noexcept = default;
  ~Connection() = default;

  // Runs one command (binary-safe arguments).
  pdv::Result<Reply> Command(const std::vector<std::string_view>& args);
  // Pipelining: Append any number of commands, then GetReply once for each, in order.
  void Append(const std::vector<std::string_view>& args);
  pdv::Result<Reply> GetReply();
  const std::string& where() const { return where_; }

 private:
  struct CloseFd {
    void operator()(int* fd) const;
  };
  struct FreeSsl {
    void operator()(SSL* s) const { SSL_free(s); }
  };
  Connection() = default;
  Status Flush();
  Status Broken(std::string what);

  std::unique_ptr<int, CloseFd> fd_;
  SslContext tls_context_;
  std::unique_ptr<SSL, FreeSsl> ssl_;
  std::string out_;
  std::unique_ptr<ReplyReader> reader_;
  std::string where_;          // host:port, for messages
  bool cluster_node_ = false;  // the endpoint is a cluster's: MOVED and ASK are expected
  Status broken_;              // once the stream is unusable, every call fails with it
};

}  // namespace pdv::redis
