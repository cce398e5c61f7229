#include "common/erasure.h"

#include <fmt/format.h>

#include "common/cpf_hasher.h"

namespace pdv {

std::string SubjectHmac(std::string_view erasure_key, std::string_view kind,
                        std::string_view value) {
  return ToHex(HmacSha256(erasure_key, fmt::format("{}:{}", kind, value)));
}

}  // namespace pdv
