// Fuzz target of the API's request path: routing, CPF parsing, the legacy route's id.
// Build with clang -fsanitize=fuzzer (scripts/fuzz-api.sh); CTest runs it under
// AddressSanitizer over deterministic mutations (api_fuzz_smoke).

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "api/request.h"
#include "cache/record.h"
#include "common/cpf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  // First line: method, rest: target.
  auto space = input.find(' ');
  std::string_view method = space == std::string_view::npos ? "GET" : input.substr(0, space);
  std::string_view target = space == std::string_view::npos ? input : input.substr(space + 1);
  pdv::api::Routed routed = pdv::api::RouteRequest(method, target);
  if (routed.route == pdv::api::Route::kCustomer) {
    auto cpf = pdv::Cpf::Parse(routed.arg);
    if (cpf.ok() && cpf->digits().size() != 11) __builtin_trap();
  } else if (routed.route == pdv::api::Route::kLegacyStatus) {
    auto id = pdv::cache::UuidBytes(routed.arg);
    if (id.ok() && pdv::cache::UuidText(*id).size() != 36) __builtin_trap();
  }
  (void)pdv::Cpf::Parse(input);
  (void)pdv::cache::Decode(input);
  return 0;
}
