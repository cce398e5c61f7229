#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "pg/connection.h"

namespace pdv::generate {

// The publication the CDC stage reads (ARCHITECTURE.md).
inline constexpr char kPublication[] = "pdv_pub";

// Creates what is missing of the OLTP schema: the clientes_clube table exactly as the
// data contract says, the generator's serial counter, and the publication pdv_pub over
// the table. Idempotent. What exists but differs from the contract is never altered:
// the error lists every difference ("column email is integer, the contract says text").
Status EnsureOltpSchema(pg::Connection& conn);

// The differences between the existing clientes_clube and the contract (empty when it
// conforms or does not exist). Extra columns are allowed: operators add columns, and
// CDC carries them.
pdv::Result<std::vector<std::string>> OltpSchemaDifferences(pg::Connection& conn);

// Reserves `count` consecutive customer serials (committed at once, so two generators
// never share one; a crash only leaves a gap). Returns the first.
pdv::Result<uint64_t> ReserveSerials(pg::Connection& conn, uint64_t count);

}  // namespace pdv::generate
