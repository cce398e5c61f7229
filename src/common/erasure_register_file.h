#pragma once

// The erasure register's copy outside the warehouse (LGPD art. 18, VI; src/subject/): a
// file a restore of the warehouse cannot roll back. `pdv subject forget` appends a
// request to it before it touches any layer; `pdv subject reapply` erases again, after a
// restore, everyone it names; cdc keeps their changes out of RAW from it as well as from
// the warehouse's platform.erasure_register.
//
// One request per line, JSON: {"request_id": UUID, "requested_at": text, "at_source":
// bool, "subjects": [{"kind": "cliente_id"|"cpf_hash"|"email", "hmac": 64 hex}]}. The
// subjects are HMACs under erasure_key (common/erasure.h): no CPF, no cpf_hash, no
// e-mail, no name. Lines starting with '#' are comments. A request may have several lines
// (a forget repeated later found more identifiers): readers take their union.

#include <filesystem>
#include <string>
#include <vector>

#include "common/status.h"

namespace pdv {

struct ErasedIdentifier {
  std::string kind;  // "cliente_id", "cpf_hash" or "email"
  std::string hmac;  // SubjectHmac(erasure_key, kind, value)
  friend bool operator==(const ErasedIdentifier&, const ErasedIdentifier&) = default;
};

struct ErasureRecord {
  std::string request_id;
  std::string requested_at;
  bool at_source = false;
  std::vector<ErasedIdentifier> subjects;
};

// The line of `record` (without its newline). Pure.
std::string ErasureRecordLine(const ErasureRecord& record);

// One line back into its record, or an error saying what is wrong with it (not JSON, a
// field missing or of the wrong type, a request id that is not a UUID, an unknown kind,
// an HMAC that is not 64 lowercase hex characters). Pure.
Result<ErasureRecord> ParseErasureRecordLine(std::string_view line);

// Every record of `file`, in file order; an absent file is an empty register (no erasure
// yet). An unreadable file, a malformed line or a last line without its newline (an
// append interrupted) is an error naming the file and line ("FILE:LINE: ..."); nothing is
// returned then, so a caller changes nothing on a register it cannot read whole.
Result<std::vector<ErasureRecord>> ReadErasureRegisterFile(const std::filesystem::path& file);

// Appends `record` as one line with a single write(2) to `file` opened O_APPEND (made
// owner-only, 0600, with a comment line saying what it is, when created), then fsync(2)s
// it (and its directory when created): once this returns Ok the line survives a crash.
// Fails, naming the file, when it cannot be opened or written in full. Not safe against a
// concurrent writer in another process beyond what O_APPEND gives (whole lines).
Status AppendErasureRegisterFile(const std::filesystem::path& file, const ErasureRecord& record);

}  // namespace pdv
