#include "subject/erase_layers.h"

#include <fmt/format.h>

#include <chrono>

#include "cache/cache.h"
#include "common/erasure.h"
#include "common/time_text.h"

namespace pdv::subject {
namespace {

// Makes the dimension's rows of `ids` tombstones: each keeps its position and nothing of
// the person (a new random id, every attribute NULL).
pdv::Result<pg::Result> Tombstone(pg::Connection& wh, const std::string& ids) {
  auto cols = wh.Exec(
      "SELECT column_name FROM information_schema.columns WHERE table_schema = 'marts' AND "
      "table_name = 'dim_clientes_clube' AND column_name NOT IN ('cliente_id', '_deleted', "
      "'_lsn')");
  if (!cols.ok()) return cols.status();
  std::string set = "cliente_id = gen_random_uuid(), _deleted = true";
  for (int i = 0; i < cols->rows(); ++i) set += ", " + wh.Identifier(cols->str(i, 0)) + " = NULL";
  return wh.ExecParams(
      fmt::format("UPDATE {} SET {} WHERE cliente_id = ANY($1::uuid[])", kDimension.name, set),
      {ids});
}

}  // namespace

Result<nlohmann::json> EraseFromLayers(Layers& tables, const Sources& sources,
                                       const Erasure& erasure, Logger& log, std::stop_token stop) {
  const std::string ids = UuidArray(erasure.cliente_ids);
  nlohmann::json layers;

  // 2. The source, when asked: the CDC delete that follows is kept out of RAW.
  if (!erasure.source_ids.empty()) {
    auto r = tables.oltp().ExecParams(
        fmt::format("DELETE FROM {} WHERE cliente_id = ANY($1::uuid[])", kOltp.name),
        {UuidArray(erasure.source_ids)});
    if (!r.ok()) return r.status();
    layers["oltp"] = {{"erased_at", UtcNowText()}, {"rows", r->affected()}};
  }

  // 3. The warehouse in one transaction, under the subject lock: a RAW batch or a model
  // write in flight commits first, and its rows are erased here; one that starts later
  // sees the register.
  {
    auto txn =
        pg::Transaction::Begin(tables.warehouse(), std::string("BEGIN; ") + kSubjectEraseLockSql);
    if (!txn.ok()) return txn.status();
    Status erased = tables.ForEach(
        Layers::Where::kWarehouse, [&](pg::Connection& conn, const Table& t) -> Status {
          auto r =
              std::string_view(t.name) == kDimension.name
                  ? Tombstone(conn, ids)
                  : conn.ExecParams(
                        fmt::format("DELETE FROM {} WHERE cliente_id = ANY($1::uuid[])", t.name),
                        {ids});
          if (!r.ok()) return r.status();
          layers[t.layer] = {{"erased_at", UtcNowText()}, {"rows", r->affected()}};
          return Status::Ok();
        });
    if (!erased.ok()) return erased;
    if (Status s = txn->Commit(); !s.ok()) return s;
  }

  // 4. Redis, under the cache's sync lock; the near-caches follow the key's invalidation.
  if (!sources.redis_url.empty()) {
    cache::CacheOptions cache_options{.warehouse_url = sources.warehouse_url,
                                      .redis_url = sources.redis_url};
    int records = 0, id_entries = 0;
    for (const auto& hash : erasure.cpf_hashes) {
      for (const auto& id : erasure.cliente_ids) {
        auto erased = cache::EraseCustomer(cache_options, hash, id, log, stop);
        if (!erased.ok()) return Status::Error("Redis: " + erased.message());
        records += erased->records;
        id_entries += erased->id_entries;
      }
    }
    layers["redis"] = {
        {"erased_at", UtcNowText()}, {"records", records}, {"id_entries", id_entries}};
  }

  // 5. The dead tuples, so the data leaves the table files too. On a data directory of
  // pdv's own, rewritten (no byte left in a page's free space).
  const bool rewrite = erasure.rewrite;
  nlohmann::json vacuumed = nlohmann::json::array();
  Status vacuum = tables.ForEach(
      !erasure.source_ids.empty() ? Layers::Where::kEverywhere : Layers::Where::kWarehouse,
      [&](pg::Connection& conn, const Table& t) {
        auto r = conn.Exec(fmt::format("VACUUM {}{}", rewrite ? "FULL " : "", t.name));
        if (!r.ok()) return r.status();
        vacuumed.push_back(t.name);
        return Status::Ok();
      });
  if (!vacuum.ok()) return vacuum;
  layers["vacuum"] = {{"at", UtcNowText()}, {"tables", vacuumed}, {"full", rewrite}};
  return layers;
}

}  // namespace pdv::subject
