#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/cpf.h"

namespace pdv {

// HMAC-SHA256 of `data` keyed with `key`: the 32 raw bytes. Thread-safe.
std::string HmacSha256(std::string_view key, std::string_view data);

// Lowercase hexadecimal of raw bytes.
std::string ToHex(std::string_view bytes);

// Computes cpf_hash as the data contract defines it: HMAC-SHA256 keyed with the bytes
// of PDV_CPF_KEY over the 11 CPF digits, in lowercase hex. The key is prepared once
// (RFC 2104 section 4: the SHA-256 states after the padded key's inner and outer blocks),
// so a hash costs two SHA-256 blocks and no allocation; the API hashes every request.
// Thread-safe (nothing is modified after construction).
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
  struct KeyedStates;  // SHA-256 states after the inner and outer key blocks
  std::unique_ptr<KeyedStates> keyed_;
};

}  // namespace pdv
