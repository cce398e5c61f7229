#include "common/cpf_hasher.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

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

void CpfHasher::MacCtxFree::operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }

CpfHasher::CpfHasher(std::string_view key) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) throw std::runtime_error("OpenSSL has no HMAC");
  keyed_.reset(EVP_MAC_CTX_new(mac));
  EVP_MAC_free(mac);  // the context keeps its own reference
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  if (!keyed_ || !EVP_MAC_init(keyed_.get(), reinterpret_cast<const unsigned char*>(key.data()),
                               key.size(), params)) {
    throw std::runtime_error("OpenSSL HMAC-SHA256 init failed");
  }
}

CpfHasher::CpfHasher(const CpfHasher& other) : keyed_(EVP_MAC_CTX_dup(other.keyed_.get())) {
  if (!keyed_) throw std::runtime_error("OpenSSL EVP_MAC_CTX_dup failed");
}

CpfHasher::~CpfHasher() = default;

std::string CpfHasher::Hash(const Cpf& cpf) const { return HashDigits(cpf.digits()); }

void CpfHasher::Mac(std::string_view data, uint8_t* out) const {
  std::unique_ptr<EVP_MAC_CTX, MacCtxFree> ctx(EVP_MAC_CTX_dup(keyed_.get()));
  size_t len = 0;
  if (!ctx ||
      !EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(data.data()),
                      data.size()) ||
      !EVP_MAC_final(ctx.get(), out, &len, 32) || len != 32) {
    throw std::runtime_error("OpenSSL HMAC-SHA256 failed");
  }
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
