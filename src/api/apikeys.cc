#include "api/apikeys.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <openssl/sha.h>

#include <algorithm>
#include <chrono>

#include "common/cpf_hasher.h"
#include "common/random_secret.h"
#include "warehouse/warehouse.h"

namespace pdv::api {
namespace {

constexpr int kSecretBytes = 32;  // of a key, after "pdv_"

// Writes one key's hash into Redis (not the index: see PutInRedis and RestoreApiKeys).
Status PutKeyHash(redis::Client& redis, const warehouse::ApiKeyRow& key) {
  return redis
      .Command({"HSET", ApiKeyRedisKey(key.hash), "name", key.name, "created_at", key.created_at,
                "revoked", key.revoked ? "1" : "0"})
      .status();
}

// Writes one key's hash, then (unless revoked) its name in the index.
Status PutInRedis(redis::Client& redis, const warehouse::ApiKeyRow& key) {
  if (Status s = PutKeyHash(redis, key); !s.ok()) return s;
  // The empty field (no key has an empty name) keeps the index present even when every
  // key is revoked: its absence means Redis lost its data.
  if (key.revoked) return redis.Command({"HSET", kApiKeysIndexKey, "", "1"}).status();
  return redis.Command({"HSET", kApiKeysIndexKey, "", "1", key.name, key.hash}).status();
}

}  // namespace

std::string ApiKeyHash(std::string_view key) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest);
  return ToHex(std::string_view(reinterpret_cast<char*>(digest), sizeof(digest)));
}

bool LooksLikeApiKey(std::string_view key) {
  if (key.size() != 4 + 2 * kSecretBytes || !key.starts_with("pdv_")) return false;
  return std::all_of(key.begin() + 4, key.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string ApiKeyRedisKey(std::string_view hash) { return fmt::format("pdv:apikey:{{{}}}", hash); }

namespace {

// Where keys live (the warehouse holds them, Redis serves them) and the keys the
// warehouse holds now: what creating and revoking a key start from.
struct KeyStores {
  std::unique_ptr<warehouse::Warehouse> wh;
  redis::Client redis;
  std::vector<warehouse::ApiKeyRow> keys;
};

pdv::Result<KeyStores> OpenKeyStores(const std::string& redis_url,
                                     const std::string& warehouse_url) {
  auto wh = warehouse::ConnectPostgresWarehouse(warehouse_url);
  if (!wh.ok()) return wh.status();
  auto redis = redis::Client::Connect(redis_url);
  if (!redis.ok()) return redis.status();
  auto keys = (*wh)->ApiKeys();
  if (!keys.ok()) return keys.status();
  return KeyStores{std::move(*wh), std::move(*redis), std::move(*keys)};
}

}  // namespace

pdv::Result<std::string> CreateApiKey(const std::string& redis_url,
                                      const std::string& warehouse_url, const std::string& name) {
  if (name.empty() || name.size() > 64)
    return Status::Error("apikey: the name must be 1-64 characters");
  auto stores = OpenKeyStores(redis_url, warehouse_url);
  if (!stores.ok()) return stores.status();
  auto& [wh, redis, keys] = *stores;
  for (const auto& k : keys) {
    if (k.name == name && !k.revoked) {
      return Status::Error(fmt::format("apikey: a key named '{}' exists; revoke it first", name));
    }
  }
  auto secret = RandomSecretHex(kSecretBytes);
  if (!secret.ok()) return secret.status();
  std::string key = "pdv_" + *secret;
  warehouse::ApiKeyRow row{
      .hash = ApiKeyHash(key),
      .name = name,
      .created_at = fmt::format(
          "{:%Y-%m-%dT%H:%M:%S}Z",
          std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now()))};
  if (Status s = wh->SaveApiKey(row); !s.ok()) return s;
  // A Redis that lost its data gets every key back first (the new one included): an
  // index holding only the new key would make every older key a 401.
  if (Status s = RestoreApiKeys(redis, warehouse_url); !s.ok()) return s;
  if (Status s = PutInRedis(redis, row); !s.ok()) return s;
  return key;
}

Status RevokeApiKey(const std::string& redis_url, const std::string& warehouse_url,
                    const std::string& name) {
  auto stores = OpenKeyStores(redis_url, warehouse_url);
  if (!stores.ok()) return stores.status();
  auto& [wh, redis, keys] = *stores;
  // As in CreateApiKey: a Redis that lost its data gets every key back first.
  if (Status s = RestoreApiKeys(redis, warehouse_url); !s.ok()) return s;
  bool found = false;
  for (auto k : keys) {
    if (k.name != name || k.revoked) continue;
    found = true;
    k.revoked = true;
    if (Status s = wh->SaveApiKey(k); !s.ok()) return s;
    if (Status s = PutInRedis(redis, k); !s.ok()) return s;
  }
  if (!found) return Status::Error(fmt::format("apikey: no key named '{}' that is active", name));
  return redis.Command({"HDEL", kApiKeysIndexKey, name}).status();
}

pdv::Result<std::vector<ApiKeyInfo>> ListApiKeys(const std::string& warehouse_url) {
  auto wh = warehouse::ConnectPostgresWarehouse(warehouse_url);
  if (!wh.ok()) return wh.status();
  auto keys = (*wh)->ApiKeys();
  if (!keys.ok()) return keys.status();
  std::vector<ApiKeyInfo> out;
  for (const auto& k : *keys) out.push_back({k.name, k.created_at, k.revoked});
  return out;
}

Status RestoreApiKeys(redis::Client& redis, const std::string& warehouse_url, size_t* restored) {
  if (restored) *restored = 0;
  auto exists = redis.Command({"EXISTS", kApiKeysIndexKey});
  if (!exists.ok()) return exists.status();
  if (exists->integer() != 0) return Status::Ok();
  auto wh = warehouse::ConnectPostgresWarehouse(warehouse_url);
  if (!wh.ok()) return wh.status();
  auto keys = (*wh)->ApiKeys();
  if (!keys.ok()) return keys.status();
  // Every key's hash first, the index last, in one command: the API reads the index's
  // presence as "the keys are loaded", so a key checked meanwhile is a 503 (not loaded
  // yet), never a 401 (loaded, and unknown). The keys live in different cluster slots,
  // so one MULTI cannot hold them; the order is what makes it safe, and a restore cut
  // short leaves no index, so the next one starts over.
  std::vector<std::string_view> index = {"HSET", kApiKeysIndexKey, "", "1"};
  for (const auto& k : *keys) {
    if (Status s = PutKeyHash(redis, k); !s.ok()) return s;
    if (!k.revoked) {
      index.push_back(k.name);
      index.push_back(k.hash);
    }
  }
  if (Status s = redis.Command(index).status(); !s.ok()) return s;
  if (restored) *restored = keys->size();
  return Status::Ok();
}

}  // namespace pdv::api
