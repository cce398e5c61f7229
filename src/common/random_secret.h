#pragma once

#include <string>

#include "common/status.h"

namespace pdv {

// `bytes` bytes from OpenSSL's CSPRNG, as lowercase hex: for generated keys
// (PDV_CPF_KEY, API keys). Thread-safe.
Result<std::string> RandomSecretHex(int bytes);

}  // namespace pdv
