#pragma once

// RAII over hiredis's replies and its RESP reader.

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include <memory>
#include <string_view>

#include "common/status.h"
#include "redis/errors.h"

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
  // kConnectionError: the stream is unusable) on malformed input.
  pdv::Result<OwnedReply> Next() {
    void* raw = nullptr;
    if (redisReaderGetReply(reader_.get(), &raw) != REDIS_OK) {
      return Status::Error("redis: protocol error", kConnectionError);
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

}  // namespace pdv::redis
