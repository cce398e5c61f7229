#pragma once

// Every Lua script of the cache stage, and how they reach Redis. The fenced ones (the
// bucket writes and pdv:meta's) are one fence prologue, written once, followed by their
// body. All are loaded once per connection (SCRIPT LOAD) and run by EVALSHA, except
// erase's two, which a one-shot `pdv subject forget` sends whole (EVAL).
//
// Redis keeps loaded scripts in memory only, per server: a restarted server, a promoted
// replica or a new Cluster master answers NOSCRIPT. The redis::Client sends SCRIPT LOAD
// to every master it knows (one connection per node on a cluster), so on NOSCRIPT the
// scripts are loaded again on every master and the command is sent once more.

#include <array>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "redis/client.h"
#include "redis/pipeline.h"

namespace pdv::cache {

// Each script names one key (KEYS[1]). The fenced ones take the writer's lease token
// (pg/lease.h; "0": a sync run by hand, not fenced) as ARGV[1] and refuse, with an error
// starting "FENCED", a token older than the key's `fence` field (Layout::kFenceField),
// which they raise to a newer one.
enum class Script : size_t {
  kUpsert,        // fenced, a cpf bucket: field, record; unless the stored one is newer
  kRemove,        // fenced, a cpf bucket: field, tombstone's 8-byte LSN, cliente_id bytes
  kSwap,          // fenced, an id bucket: id field, cpf field ("": remove); the old pointer
  kMeta,          // fenced, pdv:meta: field, value, ...
  kLockTakeOver,  // pdv:lock: new value, our lease token, TTL ms; 1 once taken over
  kLockRefresh,   // pdv:lock: our value, TTL ms; 1 while ours
  kLockRelease,   // pdv:lock: our value
  kEraseRecord,   // sent whole; a cpf bucket: field, cliente_id bytes; fields removed
  kErasePointer,  // sent whole; an id bucket: id field, cpf field; fields removed
};
inline constexpr size_t kScriptCount = 9;

// The scripts' SHA1s on one redis::Client. Use it with that client only, and load it
// again (Forget) on a new one. Not thread-safe.
class Scripts {
 public:
  // SCRIPT LOAD of every script run by EVALSHA that is not loaded yet: once, later calls
  // return at once. Fails as Redis does.
  Status Load(redis::Client& redis);
  // The scripts are to be loaded again before their next use (a new connection).
  void Forget();
  // EVALSHA of `script` on `key`, loading it first if it is not yet, and the scripts again
  // on NOSCRIPT. A script's error reply is the error (FencedAsLeaseLost tells a fence).
  pdv::Result<redis::Reply> Run(redis::Client& redis, Script script, std::string_view key,
                                const std::vector<std::string_view>& args);
  // EVALSHA's arguments for `script` on words[0] (the key) with words[1...] (ARGV):
  // views of this object's SHA and of `words`. Load first.
  std::vector<std::string_view> Evalsha(Script script, const std::vector<std::string>& words) const;

 private:
  Status LoadOne(redis::Client& redis, Script script);
  std::array<std::string, kScriptCount> sha_;  // "": not loaded
};

// EVAL of `script`'s whole text (erase's scripts: a one-shot loads nothing).
pdv::Result<redis::Reply> EvalWhole(redis::Client& redis, Script script, std::string_view key,
                                    const std::vector<std::string_view>& args);

// Script calls pipelined on one client (the client and `scripts` must outlive it; only
// it uses the client until drained). A call refused with NOSCRIPT is sent again, after
// the scripts are loaded again; such a call had not run, and the others are safe to
// run before it (each is idempotent and keyed by its own field).
class ScriptBatch {
 public:
  ScriptBatch(redis::Client& redis, Scripts& scripts) : redis_(redis), scripts_(scripts) {}
  // Queues `script` on words[0] with ARGV words[1...]. Scripts::Load first.
  void Add(Script script, std::vector<std::string> words);
  size_t size() const { return calls_.size(); }
  // Collects every reply; `each` (optional) sees the successful ones with their call's
  // index (the order of Add) until one fails. Returns the first failure, then empty.
  Status Drain(const std::function<Status(size_t, redis::Reply&)>& each = {});

 private:
  struct Call {
    Script script;
    std::vector<std::string> words;
  };
  redis::Client& redis_;
  Scripts& scripts_;
  redis::Pipeline pipeline_{redis_};
  std::vector<Call> calls_;
};

// A refused fence (a script's FENCED error) is the lease lost (code pg::kLeaseLost);
// anything else as it is.
Status FencedAsLeaseLost(Status s);

}  // namespace pdv::cache
