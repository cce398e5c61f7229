#include "subject/layers.h"

namespace pdv::subject {

Status Layers::ForEachReported(const VisitReported& each, Where where) {
  for (const Table& t : kTables) {
    if (where == Where::kWarehouse && !t.warehouse) continue;
    pg::Connection& conn = t.warehouse ? warehouse_ : oltp_;
    auto exists = conn.ExecParams("SELECT to_regclass($1) IS NOT NULL", {std::string(t.name)});
    if (!exists.ok()) return exists.status();
    if (Status s = each(conn, t, exists->get(0, 0) == std::string_view("t")); !s.ok()) return s;
  }
  return Status::Ok();
}

Status Layers::ForEach(Where where, const Visit& each) {
  return ForEachReported([&](pg::Connection& conn, const Table& t,
                             bool exists) { return exists ? each(conn, t) : Status::Ok(); },
                         where);
}

}  // namespace pdv::subject
