#include "api/apikeys.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <openssl/sha.h>

#include <chrono>

#include "common/cpf_hasher.h"
#include "common/random_secret.h"
#include "redis/client.h"

namespace pdv::api {

std::string ApiKeyHash(std::string_view key) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest);
  return ToHex(std::string_view(reinterpret_cast<char*>(digest), sizeof(digest)));
}

std::string ApiKeyRedisKey(std::string_view hash) { return fmt::format("pdv:apikey:{{{}}}", hash); }

pdv::Result<std::string> CreateApiKey(const std::string& redis_url, const std::string& name) {
  if (name.empty() || name.size() > 64)
    return Status::Error("apikey: the name must be 1-64 characters");
  auto redis = redis::Client::Connect(redis_url);
  if (!redis.ok()) return redis.status();
  auto existing = redis->Command({"HGET", "pdv:apikeys", name});
  if (!existing.ok()) return existing.status();
  if (!existing->is_nil()) {
    auto revoked = redis->Command({"HGET", ApiKeyRedisKey(existing->str()), "revoked"});
    if (!revoked.ok()) return revoked.status();
    if (revoked->is_nil() || revoked->str() != "1") {
      return Status::Error(fmt::format("apikey: a key named '{}' exists; revoke it first", name));
    }
  }
  auto secret = RandomSecretHex(32);
  if (!secret.ok()) return secret.status();
  std::string key = "pdv_" + *secret;
  std::string hash = ApiKeyHash(key);
  std::string now = fmt::format(
      "{:%Y-%m-%dT%H:%M:%S}Z",
      std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now()));
  auto set = redis->Command(
      {"HSET", ApiKeyRedisKey(hash), "name", name, "created_at", now, "revoked", "0"});
  if (!set.ok()) return set.status();
  auto index = redis->Command({"HSET", "pdv:apikeys", name, hash});
  if (!index.ok()) return index.status();
  return key;
}

Status RevokeApiKey(const std::string& redis_url, const std::string& name) {
  auto redis = redis::Client::Connect(redis_url);
  if (!redis.ok()) return redis.status();
  auto hash = redis->Command({"HGET", "pdv:apikeys", name});
  if (!hash.ok()) return hash.status();
  if (hash->is_nil()) return Status::Error(fmt::format("apikey: no key named '{}'", name));
  auto r = redis->Command({"HSET", ApiKeyRedisKey(hash->str()), "revoked", "1"});
  return r.status();
}

pdv::Result<std::vector<ApiKeyInfo>> ListApiKeys(const std::string& redis_url) {
  auto redis = redis::Client::Connect(redis_url);
  if (!redis.ok()) return redis.status();
  auto all = redis->Command({"HGETALL", "pdv:apikeys"});
  if (!all.ok()) return all.status();
  std::vector<ApiKeyInfo> out;
  for (size_t i = 0; i + 1 < all->elements(); i += 2) {
    ApiKeyInfo info{.name = all->element(i)->str};
    auto fields = redis->Command(
        {"HMGET", ApiKeyRedisKey(all->element(i + 1)->str), "created_at", "revoked"});
    if (!fields.ok()) return fields.status();
    if (fields->element(0)->type == REDIS_REPLY_STRING) info.created_at = fields->element(0)->str;
    info.revoked = fields->element(1)->type == REDIS_REPLY_STRING &&
                   std::string_view(fields->element(1)->str) == "1";
    out.push_back(info);
  }
  return out;
}

}  // namespace pdv::api
