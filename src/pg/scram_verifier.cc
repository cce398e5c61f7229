#include "pg/scram_verifier.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <array>

namespace pdv::pg {

namespace {

constexpr int kIterations = 4096;  // PostgreSQL's scram_iterations default

std::string Base64(const unsigned char* data, size_t size) {
  std::string out(4 * ((size + 2) / 3) + 1, '\0');
  int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(static_cast<size_t>(n));
  return out;
}

using Digest = std::array<unsigned char, SHA256_DIGEST_LENGTH>;

Digest Hmac(const Digest& key, std::string_view text) {
  Digest out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(text.data()), text.size(), out.data(), &len);
  return out;
}

}  // namespace

pdv::Result<std::string> ScramSha256Verifier(std::string_view password) {
  for (unsigned char c : password) {
    if (c < 0x20 || c > 0x7e) {
      return Status::Error("a password for a SCRAM verifier must be printable ASCII");
    }
  }
  std::array<unsigned char, 16> salt{};
  if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1) {
    return Status::Error("no random bytes for a SCRAM salt");
  }
  Digest salted{};
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt.data(),
                        static_cast<int>(salt.size()), kIterations, EVP_sha256(),
                        static_cast<int>(salted.size()), salted.data()) != 1) {
    return Status::Error("PBKDF2 failed building a SCRAM verifier");
  }
  Digest client_key = Hmac(salted, "Client Key");
  Digest stored_key{};
  SHA256(client_key.data(), client_key.size(), stored_key.data());
  Digest server_key = Hmac(salted, "Server Key");
  return fmt::format("SCRAM-SHA-256${}:{}${}:{}", kIterations, Base64(salt.data(), salt.size()),
                     Base64(stored_key.data(), stored_key.size()),
                     Base64(server_key.data(), server_key.size()));
}

}  // namespace pdv::pg
