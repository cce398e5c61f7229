#pragma once

// A PostgreSQL SCRAM-SHA-256 password verifier built on the client, as `psql \password`
// and libpq's PQencryptPasswordConn do: `ALTER ROLE ... PASSWORD '<verifier>'` then
// carries no plaintext password to the server (its logs, pg_stat_statements, a
// single-user session's input file), and the server stores exactly what it would have.

#include <string>
#include <string_view>

#include "common/status.h"

namespace pdv::pg {

// "SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>" (RFC 5802/7677, base64) with a
// fresh random 16-byte salt. The password is used as given: SASLprep leaves the
// printable ASCII passwords pdv makes unchanged (an error for any other byte, where
// the server's normalisation could differ). Thread-safe; fails only when the system's
// random source does.
pdv::Result<std::string> ScramSha256Verifier(std::string_view password);

}  // namespace pdv::pg
