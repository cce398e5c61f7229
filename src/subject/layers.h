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

// Where a subject's data lives: the tables of kTables, each in its database (the OLTP
// source or the warehouse), and the way through them every step takes (a table not built
// yet holds nothing). Borrows both connections, which must outlive it; not thread-safe,
// as they are not. Errors are the databases'.
class Layers {
 public:
  Layers(pg::Connection& oltp, pg::Connection& warehouse) : oltp_(oltp), warehouse_(warehouse) {}

  enum class Where { kEverywhere, kWarehouse };  // every table, or the warehouse's only
  using Visit = std::function<Status(pg::Connection&, const Table&)>;
  using VisitReported = std::function<Status(pg::Connection&, const Table&, bool exists)>;

  // `each` for every table of `where` that exists, in kTables' order, with its
  // database's connection; stops at the first error.
  Status ForEach(Where where, const Visit& each);
  Status ForEach(const Visit& each) { return ForEach(Where::kEverywhere, each); }
  // `each` for every table of `where`, `exists` false for one not built yet (a layer
  // reported as holding nothing); stops at the first error.
  Status ForEachReported(const VisitReported& each, Where where = Where::kEverywhere);

  pg::Connection& oltp() { return oltp_; }
  pg::Connection& warehouse() { return warehouse_; }

 private:
  pg::Connection& oltp_;
  pg::Connection& warehouse_;
};
// "no customer with this CPF in any layer" (or cliente_id).
Status NotFound(const Selector& who);

// The subject in every layer. A CPF is hashed with cpf_key; nothing found is an empty
// Found, not an error.
pdv::Result<Found> Resolve(Layers& layers, const Sources& sources, const Selector& who);

// A PostgreSQL array literal of UUIDs (validated), for "= ANY($1::uuid[])".
std::string UuidArray(const std::vector<std::string>& ids);

}  // namespace pdv::subject
