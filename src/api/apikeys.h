#pragma once

// API keys: created and revoked by `pdv apikey`, stored in Redis only as SHA-256 hashes,
// so every API replica sees a change at once.
//
//   pdv:apikey:{<sha256 hex>}   hash: name, created_at, revoked (0|1)
//   pdv:apikeys                 hash: name -> sha256 hex

#include <string>
#include <vector>

#include "common/status.h"

namespace pdv::api {

std::string ApiKeyHash(std::string_view key);  // lowercase hex SHA-256
std::string ApiKeyRedisKey(std::string_view hash);

struct ApiKeyInfo {
  std::string name;
  std::string created_at;
  bool revoked = false;
};

// Creates a key named `name` (an error if an active one has that name); returns the
// key itself, which is stored nowhere.
pdv::Result<std::string> CreateApiKey(const std::string& redis_url, const std::string& name);
Status RevokeApiKey(const std::string& redis_url, const std::string& name);
pdv::Result<std::vector<ApiKeyInfo>> ListApiKeys(const std::string& redis_url);

}  // namespace pdv::api
