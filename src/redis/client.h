#pragma once

// A synchronous Redis client (plain or TLS), and RAII over hiredis's replies and reader.

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "redis/endpoint.h"
#include "redis/tls.h"

namespace pdv::redis {

// Frees a hiredis reply: the deleter of every owned redisReply.
struct FreeReply {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using OwnedReply = std::unique_ptr<redisReply, FreeReply>;

// Owns a hiredis reader (redisReaderFree on destruction): parses RESP from the bytes
// fed to it, for clients that do their own I/O (the API's asynchronous ones). Move-only;
// not thread-safe.
class ReplyReader {
 public:
  ReplyReader() : reader_(redisReaderCreate()) {}
  void Feed(const char* data, size_t n) { redisReaderFeed(reader_.get(), data, n); }
  // The next complete reply, nullptr when more bytes are needed; an error (code
  // "connection": the stream is unusable) on malformed input.
  pdv::Result<OwnedReply> Next() {
    void* raw = nullptr;
    if (redisReaderGetReply(reader_.get(), &raw) != REDIS_OK) {
      return Status::Error("redis: protocol error", "connection");
    }
    return OwnedReply(static_cast<redisReply*>(raw));
  }

 private:
  struct Free {
    void operator()(redisReader* r) const { redisReaderFree(r); }
  };
  std::unique_ptr<redisReader, Free> reader_;
};

// One reply (freeReplyObject on destruction). Move-only.
class Reply {
 public:
  explicit Reply(redisReply* r) : r_(r) {}
  int type() const { return r_->type; }
  bool is_nil() const { return r_->type == REDIS_REPLY_NIL; }
  long long integer() const { return r_->integer; }
  std::string_view str() const { return {r_->str, r_->len}; }
  size_t elements() const { return r_->elements; }
  // Borrowed view of element i (valid while this Reply lives).
  const redisReply* element(size_t i) const { return r_->element[i]; }

 private:
  OwnedReply r_;
};

// One connection, plain or TLS (rediss://), with its own socket I/O and hiredis's reply
// parser. Not thread-safe; move-only. Errors carry code "connection" when the
// connection is gone (reconnect and retry) and "reply" for an error reply from the
// server. `timeout` bounds the connect and each read or write.
class Client {
 public:
  static pdv::Result<Client> Connect(const std::string& url,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(2));
  Client(Client&&) noexcept = default;
  Client& operator=(Client&&) noexcept = default;
  ~Client() = default;

  // Runs one command (binary-safe arguments).
  pdv::Result<Reply> Command(const std::vector<std::string_view>& args);
  // Pipelining: Append any number of commands, then GetReply once for each, in order.
  void Append(const std::vector<std::string_view>& args);
  pdv::Result<Reply> GetReply();

 private:
  struct CloseFd {
    void operator()(int* fd) const;
  };
  struct FreeSsl {
    void operator()(SSL* s) const { SSL_free(s); }
  };
  Client() = default;
  Status Flush();
  Status Broken(std::string what);

  std::unique_ptr<int, CloseFd> fd_;
  SslContext tls_context_;
  std::unique_ptr<SSL, FreeSsl> ssl_;
  std::string out_;
  std::unique_ptr<ReplyReader> reader_;
  std::string where_;  // host:port, for messages
  Status broken_;      // once the stream is unusable, every call fails with it
};

bool IsConnectionError(const Status& s);

}  // namespace pdv::redis
