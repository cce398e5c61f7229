#include "common/cpf_hasher.h"

// clang-format off
#define OPENSSL_SUPPRESS_DEPRECATED  // SHA256_CTX: see CpfHasher::KeyedStates
#include <openssl/sha.h>
// clang-format on
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstring>
#include <stdexcept>

namespace pdv {

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len)) {
    throw std::runtime_error("OpenSSL HMAC failed");  // only on allocation failure
  }
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string ToHex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex(bytes.size() * 2, '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    auto b = static_cast<unsigned char>(bytes[i]);
    hex[2 * i] = kHex[b >> 4];
    hex[2 * i + 1] = kHex[b & 0xf];
  }
  return hex;
}

// SHA256_Init/Update/Final are deprecated in OpenSSL 3 in favour of EVP, whose contexts
// cannot be copied without allocating; these states are plain structs copied per hash.
struct CpfHasher::KeyedStates {
  SHA256_CTX inner, outer;
};

CpfHasher::CpfHasher(std::string_view key) : keyed_(std::make_unique<KeyedStates>()) {
  unsigned char block[SHA256_CBLOCK] = {};
  if (key.size() > SHA256_CBLOCK) {  // a long key is hashed first (RFC 2104)
    SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), block);
  } else {
    std::memcpy(block, key.data(), key.size());
  }
  unsigned char pad[SHA256_CBLOCK];
  for (size_t i = 0; i < SHA256_CBLOCK; ++i) pad[i] = block[i] ^ 0x36;
  SHA256_Init(&keyed_->inner);
  SHA256_Update(&keyed_->inner, pad, sizeof(pad));
  for (size_t i = 0; i < SHA256_CBLOCK; ++i) pad[i] = block[i] ^ 0x5c;
  SHA256_Init(&keyed_->outer);
  SHA256_Update(&keyed_->outer, pad, sizeof(pad));
  OPENSSL_cleanse(block, sizeof(block));
  OPENSSL_cleanse(pad, sizeof(pad));
}

CpfHasher::CpfHasher(const CpfHasher& other)
    : keyed_(std::make_unique<KeyedStates>(*other.keyed_)) {}

CpfHasher::~CpfHasher() {
  if (keyed_) OPENSSL_cleanse(keyed_.get(), sizeof(KeyedStates));
}

std::string CpfHasher::Hash(const Cpf& cpf) const { return HashDigits(cpf.digits()); }

void CpfHasher::Mac(std::string_view data, uint8_t* out) const {
  SHA256_CTX ctx = keyed_->inner;
  unsigned char inner[SHA256_DIGEST_LENGTH];
  SHA256_Update(&ctx, data.data(), data.size());
  SHA256_Final(inner, &ctx);
  ctx = keyed_->outer;
  SHA256_Update(&ctx, inner, sizeof(inner));
  SHA256_Final(out, &ctx);
}

std::string CpfHasher::HashDigits(std::string_view eleven_digits) const {
  uint8_t out[32];
  Mac(eleven_digits, out);
  return ToHex(std::string_view(reinterpret_cast<char*>(out), sizeof(out)));
}

std::array<uint8_t, 32> CpfHasher::RawHash(const Cpf& cpf) const {
  std::array<uint8_t, 32> out{};
  Mac(cpf.digits(), out.data());
  return out;
}

}  // namespace pdv
