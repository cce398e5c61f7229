#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pdv {

// A PostgreSQL WAL position as text: "16/B374D848" <-> 0x16B374D848. Pure.
std::string LsnText(uint64_t lsn);
std::optional<uint64_t> ParseLsn(std::string_view text);

}  // namespace pdv
