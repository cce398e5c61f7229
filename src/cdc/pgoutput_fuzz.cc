// Fuzz target of the pgoutput decoder (libFuzzer entry point). Build it with clang and
// -fsanitize=fuzzer via scripts/fuzz-pgoutput.sh; CTest runs it under AddressSanitizer
// over deterministic mutations of the golden messages (pgoutput_fuzz_smoke).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cdc/pgoutput.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  (void)pdv::cdc::DecodeCopyData(input);
  // Outside and inside a streamed block (where change messages carry an xid).
  pdv::cdc::PgOutputDecoder outside;
  (void)outside.Decode(input);
  pdv::cdc::PgOutputDecoder inside;
  (void)inside.Decode(std::string_view("S\0\0\0\x01\x01", 6));
  auto m = inside.Decode(input);
  if (m.ok() && std::holds_alternative<pdv::cdc::InsertMessage>(*m)) {
    // Touch every value so a sanitizer sees any bad read.
    size_t total = 0;
    for (const auto& v : std::get<pdv::cdc::InsertMessage>(*m).new_tuple) total += v.data.size();
    if (total > size) __builtin_trap();
  }
  return 0;
}
