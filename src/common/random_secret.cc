#include "common/random_secret.h"

#include <openssl/rand.h>

#include <vector>

#include "common/cpf_hasher.h"

namespace pdv {

Result<std::string> RandomSecretHex(int bytes) {
  std::vector<unsigned char> buf(static_cast<size_t>(bytes));
  if (RAND_bytes(buf.data(), bytes) != 1) return Status::Error("OpenSSL RAND_bytes failed");
  return ToHex(std::string_view(reinterpret_cast<char*>(buf.data()), buf.size()));
}

}  // namespace pdv
