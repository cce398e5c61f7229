#include "subject/erase_layers.h"

#include <fmt/format.h>

#include <chrono>

#include "cache/cache.h"
#include "common/erasure.h"
#include "common/time_text.h"
#include "subject/relation_rewrite.h"

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

  // 5. The dead tuples, so the data leaves the table files too. With the person's values
  // and the server's files at hand (a pdv up data directory): a plain VACUUM, then a
  // rewrite of only the relations whose files still hold one of them
  // (relation_rewrite.h). With rewrite alone: every table rewritten (which of them hold
  // bytes of the person's earlier versions can't be known without reading the files).
  const auto started = std::chrono::steady_clock::now();
  const bool rewrite = erasure.rewrite, guided = rewrite && !erasure.needles.empty();
  const auto where =
      !erasure.source_ids.empty() ? Layers::Where::kEverywhere : Layers::Where::kWarehouse;
  nlohmann::json vacuumed = nlohmann::json::array();
  std::vector<std::string> oltp_tables, warehouse_tables;
  int64_t bytes_rewritten = 0;
  Status vacuum = tables.ForEach(where, [&](pg::Connection& conn, const Table& t) -> Status {
    if (rewrite && !guided) {
      auto size = conn.ExecParams("SELECT pg_total_relation_size($1::regclass)", {t.name});
      if (!size.ok()) return size.status();
      bytes_rewritten += std::stoll(size->str(0, 0));
    }
    auto r = conn.Exec(fmt::format("VACUUM {}{}", rewrite && !guided ? "FULL " : "", t.name));
    if (!r.ok()) return r.status();
    vacuumed.push_back(t.name);
    (t.warehouse ? warehouse_tables : oltp_tables).push_back(t.name);
    return Status::Ok();
  });
  if (!vacuum.ok()) return vacuum;
  nlohmann::json done = {{"at", UtcNowText()}, {"tables", vacuumed}, {"full", rewrite}};
  if (guided) {
    nlohmann::json rewritten = nlohmann::json::array();
    for (auto* db : {&warehouse_tables, &oltp_tables}) {
      if (db->empty()) continue;
      auto& conn = db == &warehouse_tables ? tables.warehouse() : tables.oltp();
      auto part = RewriteRelationsHolding(conn, *db, erasure.needles, stop);
      if (!part.ok()) return part.status();
      bytes_rewritten += (*part)["bytes_rewritten"].get<int64_t>();
      for (const auto& r : (*part)["rewritten"]) rewritten.push_back(r);
      done[db == &warehouse_tables ? "warehouse_scan" : "oltp_scan"] = {
          {"relations", (*part)["relations_scanned"]}, {"bytes", (*part)["bytes_scanned"]}};
    }
    done["full"] = false;
    done["rewritten"] = rewritten;
  }
  if (rewrite) done["bytes_rewritten"] = bytes_rewritten;
  done["seconds"] =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  layers["vacuum"] = done;
  return layers;
}

}  // namespace pdv::subject
