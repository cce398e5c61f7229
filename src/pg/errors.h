#pragma once

// What a PostgreSQL failure means, as error codes (Status::code()) and predicates on
// them: the one owner of these names. pg::Connection's errors carry the server's
// SQLSTATE, or kConnectionLost when the connection itself is gone.

#include "common/status.h"

namespace pdv::pg {

// SQLSTATE 08006 (connection_failure): the code this project gives every connection it
// lost or could not make (libpq reports no SQLSTATE then).
inline constexpr char kConnectionLost[] = "08006";

// The start of the message platform.pdv_fence raises (its schema: pg/lease.cc) when the
// lease whose token a write transaction carries has a newer holder.
inline constexpr char kFencedMessage[] = "pdv: fenced";

// True when `status` means the connection was lost (server gone, backend terminated,
// network cut): the caller should reconnect and retry, not give up. Pure.
bool IsConnectionLost(const Status& status);

// True when `status` is a write transaction refused by platform.pdv_fence: a newer
// holder has the lease, and this one must stop writing (pg::kLeaseLost). Pure.
bool IsFenced(const Status& status);

}  // namespace pdv::pg
