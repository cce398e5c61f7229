#pragma once

// What Export, Forget and Verify share: where a subject's data lives, and finding the
// subject in it. Internal to the subject component.

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "pg/connection.h"
#include "subject/subject.h"

namespace pdv::subject {

// The tables that hold customers' data, by layer (the data contract's names; staging and
// the dimension are the platform project's models).
struct Table {
  const char* layer;
  const char* name;
  bool warehouse;
  bool has_cpf_hash = true;  // the history snapshot keeps only the id and the club fields
};
inline constexpr Table kOltp{"oltp", "public.clientes_clube", false};
inline constexpr Table kRaw{"raw", "raw.clientes_clube", true};
inline constexpr Table kStaging{"staging", "staging.stg_clientes_clube", true};
inline constexpr Table kDimension{"dimension", "marts.dim_clientes_clube", true};
// The platform project's snapshot: each customer's club status and opt-in over time.
inline constexpr Table kHistory{"history", "snapshots.snap_clientes_clube", true, false};
inline constexpr Table kTables[] = {kOltp, kRaw, kStaging, kDimension, kHistory};

// One subject as the layers know it: every cliente_id the selector leads to, and the
// cpf_hash and e-mail values any layer holds for them.
struct Found {
  std::vector<std::string> cliente_ids;
  std::set<std::string> cpf_hashes;
  std::set<std::string> emails;
  std::string named_cpf_hash;  // the selector's CPF hashed ("" when named by cliente_id)
};

// Whether `table` exists on `conn` (a layer not built yet holds nothing).
pdv::Result<bool> TableExists(pg::Connection& conn, const char* table);
// `each` for every table of kTables that exists, with its database's connection; stops at
// the first error.
Status ForEachTable(pg::Connection& oltp, pg::Connection& warehouse,
                    const std::function<Status(pg::Connection&, const Table&)>& each);
// "no customer with this CPF in any layer" (or cliente_id).
Status NotFound(const Selector& who);

// The subject in every layer. A CPF is hashed with cpf_key; nothing found is an empty
// Found, not an error.
pdv::Result<Found> Resolve(pg::Connection& oltp, pg::Connection& warehouse, const Sources& sources,
                           const Selector& who);

// A PostgreSQL array literal of UUIDs (validated), for "= ANY($1::uuid[])".
std::string UuidArray(const std::vector<std::string>& ids);

}  // namespace pdv::subject
