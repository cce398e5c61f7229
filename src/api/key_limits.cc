#include "api/key_limits.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <ctime>

#include "api/apikeys.h"

namespace pdv::api {
namespace {

using Clock = std::chrono::steady_clock;
// Keys tracked per loop at most (the map is cleared past it): only keys that passed
// authentication reach it, so this bounds memory, it does not forget real clients.
constexpr size_t kMaxKeys = 10'000;
constexpr size_t kMaxAddresses = 100'000;

int64_t UnixSecond() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t UtcDay(int64_t unix_second) {
  std::time_t t = unix_second;
  std::tm tm{};
  gmtime_r(&t, &tm);
  return (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
}

int SecondsToMidnight(int64_t unix_second) { return static_cast<int>(86400 - unix_second % 86400); }

}  // namespace

std::string SuspendedKey(std::string_view key_hash) {
  return fmt::format("pdv:limit:suspended:{}", key_hash);
}

KeyLimits::KeyLimits(redis::AsyncCommands& redis, KeyLimitOptions options)
    : redis_(redis), options_(options) {
  if (options_.rate_per_key > 0) {
    chunk_ = std::clamp<uint64_t>(static_cast<uint64_t>(options_.rate_per_key / 200), 1, 1000);
  } else {
    chunk_ = 100;
  }
  if (options_.daily_quota > 0)
    chunk_ = std::min<uint64_t>(chunk_, std::max<uint64_t>(1, options_.daily_quota / 1000));
}

std::optional<Admission> KeyLimits::TryAdmit(const std::string& key) {
  if (options_.rate_per_key <= 0 && options_.daily_quota == 0) return Admission{};
  if (keys_.size() >= kMaxKeys && !keys_.contains(key)) keys_.clear();
  KeyState& s = keys_[key];
  if (s.hash.empty()) s.hash = ApiKeyHash(key);
  int64_t second = UnixSecond();
  int64_t day = UtcDay(second);
  if (s.day != day) {
    s.day = day;
    s.day_spent = false;
  }
  if (s.second != second) {
    s.second = second;
    s.allowance = 0;
    s.second_spent = false;
  }
  if (s.day_spent) return Admission{false, SecondsToMidnight(second), "COTA_DIARIA_EXCEDIDA"};
  if (s.allowance > 0) {
    --s.allowance;
    return Admission{};
  }
  if (s.second_spent) return Admission{false, 1, "LIMITE_EXCEDIDO"};
  return std::nullopt;
}

void KeyLimits::Admit(const std::string& key, std::function<void(Admission)> done) {
  if (auto now = TryAdmit(key)) return done(*now);
  // TryAdmit left the key's state for this second and day in place.
  KeyState& s = keys_[key];
  s.waiting.push_back(std::move(done));
  if (!s.fetching) Fetch(key, s, s.second, s.day);
}

void KeyLimits::Fetch(const std::string& key, KeyState& s, int64_t second, int64_t day) {
  s.fetching = true;
  std::string n = std::to_string(chunk_);
  struct Counts {
    bool failed = false;
    long long rate_total = -1, day_total = -1;
    int waiting = 0;  // replies still to come (on a cluster, from two nodes)
  };
  auto counts = std::make_shared<Counts>();
  bool with_rate = options_.rate_per_key > 0, with_day = options_.daily_quota > 0;
  counts->waiting = (with_rate ? 1 : 0) + (with_day ? 1 : 0);
  // Once both counts are in: the loop's share of this second (and day).
  auto decide = [this, key, counts, second, day, with_rate, with_day] {
    auto it = keys_.find(key);
    if (it == keys_.end()) return;  // forgotten meanwhile (map cleared): its waiters too
    KeyState& s = it->second;
    s.fetching = false;
    auto waiting = std::move(s.waiting);
    s.waiting.clear();
    if (counts->failed) {
      for (auto& w : waiting) w(Fallback(s));
      return;
    }
    uint64_t granted = chunk_;
    auto share = [&](long long total, double limit) {
      long long before = total - static_cast<long long>(chunk_);
      long long left = static_cast<long long>(limit) - before;
      return static_cast<uint64_t>(std::clamp<long long>(left, 0, static_cast<long long>(chunk_)));
    };
    if (with_rate && s.second == second) {
      uint64_t g = share(counts->rate_total, options_.rate_per_key);
      if (g < chunk_) s.second_spent = true;
      granted = std::min(granted, g);
    }
    if (with_day && s.day == day) {
      uint64_t g = share(counts->day_total, static_cast<double>(options_.daily_quota));
      if (g < chunk_) s.day_spent = true;
      granted = std::min(granted, g);
    }
    if (s.second == second) s.allowance += granted;
    // Each waiter asks again: admitted from the allowance, refused, or another chunk.
    for (auto& w : waiting) Admit(key, std::move(w));
  };
  auto count = [counts, decide](long long Counts::*field) {
    return [counts, decide, field](const Status& st, redisReply* r) {
      if (!st.ok() || r->type != REDIS_REPLY_INTEGER) {
        counts->failed = true;
      } else {
        (*counts).*field = r->integer;
      }
      if (--counts->waiting == 0) decide();
    };
  };
  if (with_rate) {
    std::string k = fmt::format("pdv:limit:rate:{}:{}", s.hash, second);
    redis_.Command({"INCRBY", k, n}, count(&Counts::rate_total));
    redis_.Command({"PEXPIRE", k, "2000"}, [](const Status&, redisReply*) {});
  }
  if (with_day) {
    std::string k = fmt::format("pdv:limit:day:{}:{}", s.hash, day);
    redis_.Command({"INCRBY", k, n}, count(&Counts::day_total));
    redis_.Command({"EXPIRE", k, "90000"}, [](const Status&, redisReply*) {});
  }
}

Admission KeyLimits::Fallback(KeyState& s) {
  double rate = options_.rate_per_key / std::max(1, options_.loops);
  if (rate <= 0) return {};
  auto now = Clock::now();
  if (s.fallback_at == Clock::time_point{}) s.fallback_tokens = rate;
  s.fallback_tokens = std::min(
      rate, s.fallback_tokens + rate * std::chrono::duration<double>(now - s.fallback_at).count());
  s.fallback_at = now;
  if (s.fallback_tokens >= 1.0) {
    s.fallback_tokens -= 1.0;
    return {};
  }
  return {false, 1, "LIMITE_EXCEDIDO"};
}

int AddressLimits::Take(const std::string& address) {
  if (rate_ <= 0) return 0;
  auto now = Clock::now();
  if (buckets_.size() >= kMaxAddresses && !buckets_.contains(address)) buckets_.clear();
  auto [it, fresh] = buckets_.try_emplace(address, Bucket{rate_, now});
  Bucket& b = it->second;
  b.tokens = std::min(rate_, b.tokens + rate_ * std::chrono::duration<double>(now - b.at).count());
  b.at = now;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return 0;
  }
  return std::max(1, static_cast<int>(std::ceil((1.0 - b.tokens) / rate_)));
}

bool AddressConnections::Acquire(const std::string& address) {
  if (cap_ == 0) return true;
  std::lock_guard lock(mu_);
  size_t& open = open_[address];
  if (open >= cap_) {
    if (open == 0) open_.erase(address);
    return false;
  }
  ++open;
  return true;
}

void AddressConnections::Release(const std::string& address) {
  if (cap_ == 0) return;
  std::lock_guard lock(mu_);
  auto it = open_.find(address);
  if (it == open_.end()) return;
  // Erased at zero: the map holds only addresses with open connections.
  if (--it->second == 0) open_.erase(it);
}

bool EnumerationWatch::Record(const std::string& key, bool not_found) {
  if (ratio_ <= 0) return false;
  auto now = Clock::now();
  if (windows_.size() >= kMaxKeys && !windows_.contains(key)) windows_.clear();
  Window& w = windows_[key];
  if (w.started == Clock::time_point{} || now - w.started >= window_) w = Window{.started = now};
  ++w.lookups;
  if (not_found) ++w.not_found;
  if (w.raised || w.lookups < min_lookups_) return false;
  if (static_cast<double>(w.not_found) <= ratio_ * static_cast<double>(w.lookups)) return false;
  w.raised = true;
  return true;
}

}  // namespace pdv::api
