// The cache's Lua scripts (see scripts.h): their text, loading and calls.

#include "cache/scripts.h"

#include <utility>

#include "pg/lease.h"
#include "redis/errors.h"

namespace pdv::cache {
namespace {

// Every fenced write keeps its fence in the key it writes: Redis Cluster runs a script on
// one slot, so pdv:meta cannot be read beside a bucket. ARGV[1] is the writer's lease
// token, kept in the key's fence field (Layout::kFenceField); an older token is refused,
// so a former holder that wakes with a batch in hand cannot overwrite, resurrect or
// re-point what a newer holder wrote, move the position or switch versions. A bucket the
// newer holder has not written yet holds no newer state of the former's customers, and
// the newer holder's own writes, in LSN order, follow. "0" (a sync run by hand) is not
// fenced. The other writes need no fence: an older state never overwrites a newer one.
constexpr char kFencePrologue[] = R"lua(
local token = tonumber(ARGV[1])
if token > 0 then
  local fence = tonumber(redis.call('HGET', KEYS[1], 'fence') or '0')
  if token < fence then
    return redis.error_reply('FENCED ' .. KEYS[1] .. ' is written by a newer cache holder (token ' .. fence .. ')')
  end
  if token > fence then redis.call('HSET', KEYS[1], 'fence', ARGV[1]) end
end
)lua";

struct Text {
  bool fenced;
  const char* body;
};

// In the order of enum Script.
constexpr Text kTexts[kScriptCount] = {
    // kUpsert: unless the stored state is newer (values start with their 8-byte
    // big-endian LSN, so byte order is LSN order).
    {true, R"lua(
local cur = redis.call('HGET', KEYS[1], ARGV[2])
if cur and string.sub(cur, 1, 8) > string.sub(ARGV[3], 1, 8) then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
return 1)lua"},
    // kRemove: unless the stored state is newer than the tombstone, or another customer's.
    {true, R"lua(
local cur = redis.call('HGET', KEYS[1], ARGV[2])
if not cur then return 0 end
if string.sub(cur, 1, 8) > ARGV[3] then return 0 end
if string.sub(cur, 9, 24) ~= ARGV[4] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[2])
return 1)lua"},
    // kSwap: points the id index at a new cpf field (or removes it); the old pointer.
    {true, R"lua(
local old = redis.call('HGET', KEYS[1], ARGV[2])
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[2])
else redis.call('HSET', KEYS[1], ARGV[2], ARGV[3]) end
return old or '')lua"},
    // kMeta: pdv:meta's updates (the position, a full load's switch).
    {true, R"lua(
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1)lua"},
    // kLockTakeOver: compare-and-set over a former watch's lock (its token older than
    // ours, and not 0: a sync run by hand is waited for).
    {false, R"lua(
local cur = redis.call('GET', KEYS[1]) if not cur then return 0 end
local held = tonumber(string.match(cur, '^(%d+):'))
if held and held > 0 and held < tonumber(ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3]) return 1
end
return 0)lua"},
    // kLockRefresh
    {false, R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0)lua"},
    // kLockRelease
    {false, R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0)lua"},
    // kEraseRecord: the record only if it is this customer's (a cpf_hash is one person's,
    // but the check costs nothing); its LSN is no bound: everything of it goes.
    {false, R"lua(
local cur = redis.call('HGET', KEYS[1], ARGV[1]) if not cur then return 0 end
if string.sub(cur, 9, 24) ~= ARGV[2] then return 0 end
return redis.call('HDEL', KEYS[1], ARGV[1]))lua"},
    // kErasePointer: the id entry only if it points at the customer's record.
    {false, R"lua(
local cur = redis.call('HGET', KEYS[1], ARGV[1]) if cur ~= ARGV[2] then return 0 end
return redis.call('HDEL', KEYS[1], ARGV[1]))lua"},
};

// Sent whole, never loaded.
bool SentWhole(Script s) { return s == Script::kEraseRecord || s == Script::kErasePointer; }

std::string TextOf(Script s) {
  const Text& t = kTexts[static_cast<size_t>(s)];
  return t.fenced ? std::string(kFencePrologue) + t.body : std::string(t.body);
}

bool IsNoScript(const Status& s) { return redis::IsNoScript(s); }

// `command` `text_or_sha` 1 key args...
std::vector<std::string_view> ScriptCommand(std::string_view command, std::string_view script,
                                            std::string_view key,
                                            const std::vector<std::string_view>& args) {
  std::vector<std::string_view> out = {command, script, "1", key};
  out.insert(out.end(), args.begin(), args.end());
  return out;
}

}  // namespace

Status Scripts::LoadOne(redis::Client& redis, Script script) {
  auto r = redis.Command({"SCRIPT", "LOAD", TextOf(script)});
  if (!r.ok()) return r.status();
  sha_[static_cast<size_t>(script)] = std::string(r->str());
  return Status::Ok();
}

Status Scripts::Load(redis::Client& redis) {
  for (size_t i = 0; i < kScriptCount; ++i) {
    if (SentWhole(static_cast<Script>(i)) || !sha_[i].empty()) continue;
    if (Status s = LoadOne(redis, static_cast<Script>(i)); !s.ok()) return s;
  }
  return Status::Ok();
}

void Scripts::Forget() {
  for (auto& sha : sha_) sha.clear();
}

pdv::Result<redis::Reply> Scripts::Run(redis::Client& redis, Script script, std::string_view key,
                                       const std::vector<std::string_view>& args) {
  const std::string& sha = sha_[static_cast<size_t>(script)];
  for (int attempt = 0;; ++attempt) {
    if (sha.empty()) {
      if (Status s = LoadOne(redis, script); !s.ok()) return s;
    }
    auto r = redis.Command(ScriptCommand("EVALSHA", sha, key, args));
    if (attempt > 0 || !IsNoScript(r.status())) return r;
    Forget();  // the server lost them all (restarted, failed over)
  }
}

std::vector<std::string_view> Scripts::Evalsha(Script script,
                                               const std::vector<std::string>& words) const {
  std::vector<std::string_view> out = {"EVALSHA", sha_[static_cast<size_t>(script)], "1"};
  out.insert(out.end(), words.begin(), words.end());
  return out;
}

pdv::Result<redis::Reply> EvalWhole(redis::Client& redis, Script script, std::string_view key,
                                    const std::vector<std::string_view>& args) {
  return redis.Command(ScriptCommand("EVAL", TextOf(script), key, args));
}

void ScriptBatch::Add(Script script, std::vector<std::string> words) {
  calls_.push_back({script, std::move(words)});
  pipeline_.Add(scripts_.Evalsha(script, calls_.back().words));
}

Status ScriptBatch::Drain(const std::function<Status(size_t, redis::Reply&)>& each) {
  std::vector<size_t> order(calls_.size()), again;
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  bool failed = false;
  // Twice at most: the calls, then those refused with NOSCRIPT, with the scripts loaded.
  for (int round = 0; round < 2 && !order.empty(); ++round) {
    size_t next = 0;
    Status s = pipeline_.DrainEach([&](Result<redis::Reply>& r) -> Status {
      size_t at = order[next++];
      if (failed) return Status::Ok();
      if (round == 0 && IsNoScript(r.status())) {
        again.push_back(at);
        return Status::Ok();
      }
      Status done = !r.ok() ? r.status() : each ? each(at, *r) : Status::Ok();
      failed = !done.ok();
      return done;
    });
    if (s.ok() && !again.empty()) {
      scripts_.Forget();
      s = scripts_.Load(redis_);
      for (size_t at : again) {
        if (s.ok()) pipeline_.Add(scripts_.Evalsha(calls_[at].script, calls_[at].words));
      }
    }
    if (!s.ok()) {
      calls_.clear();
      return s;
    }
    order = std::move(again);
    again.clear();
  }
  calls_.clear();
  return Status::Ok();
}

Status FencedAsLeaseLost(Status s) {
  if (redis::IsFenced(s)) {
    return Status::Error("cache: " + s.message(), pg::kLeaseLost);
  }
  return s;
}

}  // namespace pdv::cache
