#pragma once

// The erasure register's shared names (LGPD art. 18, VI; src/subject/): how a data
// subject is named there without plaintext, and the lock that orders erasures with the
// stages that write a subject's data into the warehouse.

#include <string>
#include <string_view>

namespace pdv {

// A subject's identifier as the register keeps it: HMAC-SHA256 keyed with erasure_key
// over "<kind>:<value>", lowercase hex. Kinds: "cliente_id" (the UUID's text),
// "cpf_hash" (64 hex characters), "email". Without the key it reveals nothing, and the
// same subject always gives the same value, so every layer can be checked against it.
std::string SubjectHmac(std::string_view erasure_key, std::string_view kind,
                        std::string_view value);

// The column that names a subject in every layer (the data contract's customer id).
inline constexpr char kSubjectColumn[] = "cliente_id";

// Taken (shared) at the start of every warehouse transaction that writes subject data
// (a RAW batch, a model's transaction); `pdv subject forget` takes it exclusively for its
// erasure. A write in flight is committed before the erasure reads, and a write that
// starts after it sees the register entry; writers never wait for each other.
inline constexpr char kSubjectWriteLockSql[] =
    "SELECT pg_advisory_xact_lock_shared(hashtext('pdv subject data'))";
inline constexpr char kSubjectEraseLockSql[] =
    "SELECT pg_advisory_xact_lock(hashtext('pdv subject data'))";

}  // namespace pdv
