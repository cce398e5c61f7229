// The readers record.h declares that do I/O: the dimension into records, and a bucket's
// fields. Kept out of record.cc, which is pure (no I/O) and built into the API's fuzzers.

#include <fmt/format.h>

#include "cache/record.h"
#include "redis/client.h"

namespace pdv::cache {

Status ReadDimensionRecords(warehouse::Warehouse& wh, const DimensionRead& read,
                            const std::function<Status(const DimensionRecord&)>& each) {
  return wh.ReadDimension(
      read.after_lsn, read.after_id, read.live_only, read.limit,
      [&](const warehouse::DimensionRow& d) -> Status {
        DimensionRecord out{.row = d};
        if (d.deleted && d.cpf_hash.empty()) {
          out.nameless = true;
          return each(out);
        }
        auto named = [&](const Status& s) {
          return Status::Error(fmt::format("dimension: cliente {}: {}", d.cliente_id, s.message()));
        };
        auto hash = HashBytes(d.cpf_hash);
        if (!hash.ok()) return named(hash.status());
        out.hash = *hash;
        if (d.deleted) {
          auto id = UuidBytes(d.cliente_id);
          if (!id.ok()) return named(id.status());
          out.id = *id;
        } else {
          auto record = RecordFromDimension(d);
          if (!record.ok()) return record.status();
          out.id = record->cliente_id;
          out.record = std::move(*record);
        }
        return each(out);
      },
      read.max_lsn);
}

Status ScanBucket(
    redis::Client& redis, std::string_view key,
    const std::function<Status(std::string_view field, std::string_view value)>& each) {
  auto all = redis.Command({"HGETALL", key});
  if (!all.ok()) return all.status();
  for (size_t i = 0; i + 1 < all->elements(); i += 2) {
    std::string_view field(all->element(i)->str, all->element(i)->len);
    if (field == Layout::kFenceField) continue;
    if (Status s =
            each(field, std::string_view(all->element(i + 1)->str, all->element(i + 1)->len));
        !s.ok()) {
      return s;
    }
  }
  return Status::Ok();
}

}  // namespace pdv::cache
