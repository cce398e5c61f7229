#pragma once

// API keys: created and revoked by `pdv apikey`, stored only as SHA-256 hashes. Their
// durable home is the warehouse (platform.api_keys); the API reads them from Redis, so
// every replica sees a change at once, and Redis is refilled from the warehouse when it
// lost its data (RestoreApiKeys, run by the cache stage). This file owns the layout:
//
//   pdv:apikey:{<sha256 hex>}   hash: name, created_at, revoked (0|1)
//   pdv:apikeys                 hash: name -> sha256 hex of active keys, and the field
//                               "" (always there: its absence means data lost)

#include <string>
#include <vector>

#include "common/status.h"
#include "redis/client.h"

namespace pdv::api {

inline constexpr char kApiKeysIndexKey[] = "pdv:apikeys";

std::string ApiKeyHash(std::string_view key);  // lowercase hex SHA-256
// Whether `key` has the form CreateApiKey gives keys ("pdv_" and 64 lowercase hex
// digits): anything else cannot be a key. Pure.
bool LooksLikeApiKey(std::string_view key);
std::string ApiKeyRedisKey(std::string_view hash);

struct ApiKeyInfo {
  std::string name;
  std::string created_at;
  bool revoked = false;
};

// Creates a key named `name` (an error if an active one has that name): first in the
// warehouse, then in Redis. Returns the key itself, which is stored nowhere.
pdv::Result<std::string> CreateApiKey(const std::string& redis_url,
                                      const std::string& warehouse_url, const std::string& name);
// Revokes every active key named `name`, in the warehouse and then in Redis (the API
// sees it within its half-second key cache). An error if none is active.
Status RevokeApiKey(const std::string& redis_url, const std::string& warehouse_url,
                    const std::string& name);
// From the warehouse, oldest first.
pdv::Result<std::vector<ApiKeyInfo>> ListApiKeys(const std::string& warehouse_url);

// When Redis has no key index (it lost its data), writes every key of the warehouse
// into it, revocations included, so keys made before the loss work again unchanged.
// Cheap when nothing was lost (one EXISTS). `restored` (optional) gets the count.
Status RestoreApiKeys(redis::Client& redis, const std::string& warehouse_url,
                      size_t* restored = nullptr);

}  // namespace pdv::api
