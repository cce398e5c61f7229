#include "api/customer_store.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace pdv::api {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

CustomerStore::CustomerStore(boost::asio::io_context& io, redis::AsyncCommands& redis,
                             SharedState& shared,
                             std::function<void(const Status&)> log_redis_error)
    : io_(io), redis_(redis), shared_(shared), log_redis_error_(std::move(log_redis_error)) {}

void CustomerStore::StartNearCache() {
  // The near-cache: every server this loop reads from tracks its reads (per node on a
  // cluster, the current primary behind Sentinels).
  if (shared_.options.near_cache) {
    near_cache_on_ = true;
    redis_.EnableTracking({.on_key =
                               [this](std::string_view key) {
                                 // Only cpf index reads are cached.
                                 if (auto b = cache::Layout::CpfBucketOfKey(key)) {
                                   near_.Invalidate(*b);
                                 }
                               },
                           .on_reset = [this] { near_.Clear(); }});
  }
}

void CustomerStore::KeepLayoutFresh() {
  RefreshLayout();
  auto timer = std::make_shared<boost::asio::steady_timer>(io_, std::chrono::seconds(1));
  timer->async_wait([this, timer](boost::system::error_code ec) {
    if (!ec && !shared_.stopping) KeepLayoutFresh();
  });
}

void CustomerStore::RefreshLayout(std::function<void()> then) {
  // With a layout, once a second; without one (nothing loaded, or Redis lost it), as
  // lookups ask, every 20 ms at most, so the reload is seen at once.
  auto age = Clock::now() - layout_at_;
  if (!then && (layout_refreshing_ || (layout_ && age < std::chrono::seconds(1)) ||
                (!layout_ && age < std::chrono::milliseconds(20)))) {
    return;
  }
  layout_refreshing_ = true;
  redis_.Command({"HMGET", cache::kMetaKey, "version", "bits", "format"},
                 [this, then](const Status& s, redisReply* r) {
                   layout_refreshing_ = false;
                   if (s.ok() && r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
                     std::vector<std::pair<std::string, std::string>> fields;
                     const char* names[] = {"version", "bits", "format"};
                     for (size_t i = 0; i < 3; ++i) {
                       if (r->element[i]->type == REDIS_REPLY_STRING) {
                         fields.emplace_back(names[i],
                                             std::string(r->element[i]->str, r->element[i]->len));
                       }
                     }
                     auto meta = cache::ParseMeta(fields);
                     if (meta.ok() && meta->exists) {
                       layout_ = meta->layout;
                     } else {
                       // No dataset (Redis lost its data, or before the first load) or a
                       // malformed meta: nothing can be known, so lookups answer 503, never
                       // "unknown".
                       if (!meta.ok()) log_redis_error_(meta.status());
                       if (layout_) near_.Clear();
                       layout_.reset();
                     }
                     layout_at_ = Clock::now();
                   }
                   if (then) then();
                 });
}

void CustomerStore::ByHash(const Hash& hash, std::shared_ptr<void> hold, Done done) {
  Fetch(hash, /*retried=*/false, std::move(hold), std::move(done));
}

// One HGET. On a miss, the layout is re-read once (a full load may just have switched
// versions) before the miss is believed.
void CustomerStore::Fetch(const Hash& hash, bool retried, std::shared_ptr<void> hold, Done done) {
  if (!layout_) {
    // Nothing loaded as far as this loop knows: ask Redis once before saying so (a load
    // may have just switched in, seen by another loop first).
    if (retried) return done({Outcome::kNotLoaded});
    return RefreshLayout([this, hold, hash, done] {
      if (!layout_) return done({Outcome::kNotLoaded});
      Fetch(hash, true, hold, done);
    });
  }
  const cache::Layout layout = *layout_;
  const uint32_t bucket = layout.Bucket(hash.data());
  std::string key = layout.CpfBucketKey(bucket);
  // Invalidations Redis sent before this request arrived are applied first.
  bool cacheable = near_cache_on_ && redis_.Tracked(key);
  NearCache::Ticket ticket;
  if (cacheable) {
    if (const cache::CustomerRecord* hit = near_.Get(hash, layout.version, bucket)) {
      shared_.near_hits->Add(1);
      return done({Outcome::kFound, hit});
    }
    shared_.near_misses->Add(1);
    ticket = near_.Take(bucket);
  }
  redis_.Command(
      {"HGET", key, cache::Layout::CpfField(hash)},
      [this, hold = std::move(hold), hash, retried, done, key, bucket, cacheable, ticket,
       version = layout.version](const Status& s, redisReply* r) {
        if (!s.ok()) return done({Outcome::kUnavailable, nullptr, s});
        if (r->type == REDIS_REPLY_STRING) {
          auto rec = cache::Decode(std::string_view(r->str, r->len));
          if (!rec.ok()) {
            return done({Outcome::kUnavailable, nullptr, Status::Error("undecodable record")});
          }
          if (cacheable && redis_.TrackingOn(key)) near_.Put(hash, version, bucket, *rec, ticket);
          return done({Outcome::kFound, &*rec});
        }
        if (retried) return done({Outcome::kNotFound});
        RefreshLayout([this, hold, hash, done, version] {
          // The dataset is gone (Redis lost it): not "unknown".
          if (!layout_) return done({Outcome::kNotLoaded});
          if (layout_->version == version) return done({Outcome::kNotFound});
          Fetch(hash, true, hold, done);
        });
      });
}

void CustomerStore::ById(const std::array<uint8_t, 16>& id, std::shared_ptr<void> hold, Done done) {
  if (!layout_) {
    return RefreshLayout([this, id, hold, done] {
      if (!layout_) return done({Outcome::kNotLoaded});
      ById(id, hold, done);
    });
  }
  const cache::Layout layout = *layout_;
  redis_.Command({"HGET", layout.IdKey(id), cache::Layout::IdField(id)},
                 [this, id, hold, done](const Status& s, redisReply* r) {
                   if (!s.ok()) return done({Outcome::kUnavailable, nullptr, s});
                   if (r->type != REDIS_REPLY_STRING || r->len != cache::Layout::kCpfFieldBytes) {
                     return done({Outcome::kNotFound});
                   }
                   Hash hash{};
                   std::copy(r->str, r->str + r->len, hash.begin());
                   ByHash(hash, hold, [id, done](const Answer& a) {
                     if (a.outcome == Outcome::kFound && a.record->cliente_id != id) {
                       return done({Outcome::kNotFound});
                     }
                     done(a);
                   });
                 });
}

}  // namespace pdv::api
