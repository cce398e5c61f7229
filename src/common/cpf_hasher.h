#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/cpf.h"

typedef struct evp_mac_ctx_st EVP_MAC_CTX;

namespace pdv {

// HMAC-SHA256 of `data` keyed with `key`: the 32 raw bytes. Thread-safe.
std::string HmacSha256(std::string_view key, std::string_view data);

// Lowercase hexadecimal of raw bytes.
std::string ToHex(std::string_view bytes);

// Computes cpf_hash as the data contract defines it: HMAC-SHA256 keyed with the bytes
// of PDV_CPF_KEY over the 11 CPF digits, in lowercase hex. The key is prepared once, so
// hashing costs one context copy. Not thread-safe: give each thread its own copy.
class CpfHasher {
 public:
  explicit CpfHasher(std::string_view key);
  CpfHasher(const CpfHasher& other);
  CpfHasher& operator=(const CpfHasher&) = delete;
  ~CpfHasher();

  std::string Hash(const Cpf& cpf) const;
  std::string HashDigits(std::string_view eleven_digits) const;
  // The same HMAC as 32 raw bytes (what the cache's keys are made of).
  std::array<uint8_t, 32> RawHash(const Cpf& cpf) const;

 private:
  // The 32-byte HMAC of `data` into `out`.
  void Mac(std::string_view data, uint8_t* out) const;
  struct MacCtxFree {
    void operator()(EVP_MAC_CTX* ctx) const;
  };
  std::unique_ptr<EVP_MAC_CTX, MacCtxFree> keyed_;
};

}  // namespace pdv
