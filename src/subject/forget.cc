#include <fmt/format.h>

#include <chrono>

#include "cache/cache.h"
#include "common/cpf.h"
#include "common/erasure.h"
#include "common/random_secret.h"
#include "common/time_text.h"
#include "subject/forget_files.h"
#include "subject/layers.h"

namespace pdv::subject {
namespace fs = std::filesystem;
namespace {

std::string TimeText(std::chrono::system_clock::time_point t) {
  return TimestampText(
             std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count()) +
         "Z";
}

std::string NowText() { return TimeText(std::chrono::system_clock::now()); }

pdv::Result<std::string> NewRequestId() {
  auto hex = RandomSecretHex(16);
  if (!hex.ok()) return hex.status();
  std::string h = *hex;
  h[12] = '4';  // a version-4 UUID
  h[16] = "89ab"[h[16] % 4];
  return fmt::format("{}-{}-{}-{}-{}", h.substr(0, 8), h.substr(8, 4), h.substr(12, 4),
                     h.substr(16, 4), h.substr(20));
}

// The earlier request that named any of these HMACs ("" if none): the one to repeat.
pdv::Result<std::string> EarlierRequest(pg::Connection& wh, const std::vector<std::string>& hmacs) {
  if (hmacs.empty()) return std::string();
  std::string list = "{";
  for (size_t i = 0; i < hmacs.size(); ++i) list += (i ? "," : "") + hmacs[i];
  list += "}";
  auto r = wh.ExecParams(
      "SELECT request_id::text FROM platform.erasure_register WHERE hmac = ANY($1::text[]) "
      "ORDER BY seq LIMIT 1",
      {list});
  if (!r.ok()) return r.status();
  return r->rows() ? r->str(0, 0) : std::string();
}

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

pdv::Result<nlohmann::json> Forget(const Sources& sources, const Selector& who,
                                   const ForgetOptions& options, Logger& log,
                                   std::stop_token stop) {
  if (sources.erasure_key.empty()) {
    return Status::Error("forget needs erasure_key: the register names subjects by HMAC only");
  }
  auto oltp = pg::Connection::Connect(sources.oltp_url);
  if (!oltp.ok()) return oltp.status();
  auto wh = pg::Connection::Connect(sources.warehouse_url);
  if (!wh.ok()) return wh.status();
  Layers tables(*oltp, *wh);
  auto found = Resolve(tables, sources, who);
  if (!found.ok()) return found.status();
  const std::string& key = sources.erasure_key;

  // The subject's HMACs: each cliente_id (and the CPF's hash when named by CPF).
  std::vector<std::string> hmacs;
  for (const auto& id : found->cliente_ids) hmacs.push_back(SubjectHmac(key, kSubjectColumn, id));
  for (const auto& h : found->cpf_hashes) hmacs.push_back(SubjectHmac(key, "cpf_hash", h));
  if (!found->named_cpf_hash.empty()) {
    hmacs.push_back(SubjectHmac(key, "cpf_hash", found->named_cpf_hash));
  }
  auto earlier = EarlierRequest(*wh, hmacs);
  if (!earlier.ok()) return earlier.status();
  if (found->cliente_ids.empty()) {
    if (!earlier->empty()) {
      auto r = wh->ExecParams(
          "SELECT receipt::text FROM platform.erasure_requests WHERE request_id = $1::uuid",
          {*earlier});
      if (!r.ok()) return r.status();
      auto receipt = nlohmann::json::parse(r->str(0, 0));
      receipt["already_erased"] = true;
      return receipt;
    }
    return NotFound(who);
  }
  std::string request_id = *earlier;
  if (request_id.empty()) {
    auto id = NewRequestId();
    if (!id.ok()) return id.status();
    request_id = *id;
  }
  const auto requested = std::chrono::system_clock::now();
  nlohmann::json receipt = {{"request_id", request_id}, {"requested_at", TimeText(requested)}};
  nlohmann::json subject_hmacs = nlohmann::json::array();

  // 1. The register first, committed: from now on cdc keeps these ids out of RAW.
  {
    auto r = wh->ExecParams(
        "INSERT INTO platform.erasure_requests (request_id, at_source) VALUES ($1::uuid, "
        "$2::boolean) ON CONFLICT (request_id) DO UPDATE SET at_source = "
        "erasure_requests.at_source OR EXCLUDED.at_source",
        {request_id, options.at_source ? "true" : "false"});
    if (!r.ok()) return r.status();
  }
  auto remember = [&](const char* kind, const std::string& value) -> Status {
    std::string hmac = SubjectHmac(key, kind, value);
    if (std::string_view(kind) == kSubjectColumn) subject_hmacs.push_back(hmac);
    return wh
        ->ExecParams(
            "INSERT INTO platform.erasure_register (request_id, kind, hmac) VALUES ($1::uuid, "
            "$2, $3) ON CONFLICT (kind, hmac) DO NOTHING",
            {request_id, std::string(kind), hmac})
        .status();
  };
  for (const auto& id : found->cliente_ids) {
    if (Status s = remember(kSubjectColumn, id); !s.ok()) return s;
  }
  for (const auto& h : found->cpf_hashes) {
    if (Status s = remember("cpf_hash", h); !s.ok()) return s;
  }
  for (const auto& e : found->emails) {
    if (Status s = remember("email", e); !s.ok()) return s;
  }
  receipt["cliente_id_hmacs"] = subject_hmacs;
  // On a pdv up data directory: the person's values, in memory only, for the files step.
  std::vector<Needle> needles;
  std::vector<std::string> cpfs;
  if (!options.data_dir.empty()) {
    auto exported = Export(sources, who);
    if (!exported.ok()) return exported.status();
    if (!who.cpf.empty()) {
      auto cpf = Cpf::Parse(who.cpf);
      if (cpf.ok()) cpfs.push_back(cpf->digits());
    }
    std::vector<std::string> hashes(found->cpf_hashes.begin(), found->cpf_hashes.end());
    for (auto& c : CpfsInList(fs::path(options.data_dir) / "cpfs.txt", sources.cpf_key, hashes)) {
      cpfs.push_back(std::move(c));
    }
    needles = NeedlesOf(ValuesOf(*exported, cpfs.empty() ? "" : cpfs[0]), cpfs);
  }
  std::string ids = UuidArray(found->cliente_ids);
  nlohmann::json layers;

  // 2. The source, when asked: the CDC delete that follows is kept out of RAW.
  if (options.at_source) {
    auto r = oltp->ExecParams(
        fmt::format("DELETE FROM {} WHERE cliente_id = ANY($1::uuid[])", kOltp.name), {ids});
    if (!r.ok()) return r.status();
    layers["oltp"] = {{"erased_at", NowText()}, {"rows", r->affected()}};
  }

  // 3. The warehouse in one transaction, under the subject lock: a RAW batch or a model
  // write in flight commits first, and its rows are erased here; one that starts later
  // sees the register.
  {
    auto txn = pg::Transaction::Begin(*wh, std::string("BEGIN; ") + kSubjectEraseLockSql);
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
          layers[t.layer] = {{"erased_at", NowText()}, {"rows", r->affected()}};
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
    for (const auto& hash : found->cpf_hashes) {
      for (const auto& id : found->cliente_ids) {
        auto erased = cache::EraseCustomer(cache_options, hash, id, log, stop);
        if (!erased.ok()) return Status::Error("Redis: " + erased.message());
        records += erased->records;
        id_entries += erased->id_entries;
      }
    }
    layers["redis"] = {{"erased_at", NowText()}, {"records", records}, {"id_entries", id_entries}};
  }

  // 5. The dead tuples, so the data leaves the table files too. On a data directory of
  // pdv's own, rewritten (no byte left in a page's free space).
  const bool rewrite = options.rewrite || !options.data_dir.empty();
  nlohmann::json vacuumed = nlohmann::json::array();
  Status vacuum = tables.ForEach(
      options.at_source ? Layers::Where::kEverywhere : Layers::Where::kWarehouse,
      [&](pg::Connection& conn, const Table& t) {
        auto r = conn.Exec(fmt::format("VACUUM {}{}", rewrite ? "FULL " : "", t.name));
        if (!r.ok()) return r.status();
        vacuumed.push_back(t.name);
        return Status::Ok();
      });
  if (!vacuum.ok()) return vacuum;
  layers["vacuum"] = {{"at", NowText()}, {"tables", vacuumed}, {"full", rewrite}};
  receipt["layers"] = layers;
  // 6. The files (a pdv up data directory), or what the operator must do for them.
  if (!options.data_dir.empty()) {
    auto files = ForgetFiles(sources, *oltp, *wh, options, needles, cpfs, stop);
    if (!files.ok()) return files.status();
    receipt["files"] = *files;
  } else {
    receipt["files"] = {
        {"reached", false},
        {"operator_must",
         "the servers are not pdv's: rewrite the tables (pdv subject forget --rewrite, or VACUUM "
         "FULL), let a checkpoint recycle the WAL written before now, rewrite Redis's "
         "append-only file (BGREWRITEAOF) and delete any plaintext export naming the person"}};
  }
  receipt["not_covered"] = {
      {"backups",
       "a backup taken before the erasure still holds the person: after a restore, run pdv "
       "subject forget again for this request's subject"},
      {"source_system", options.at_source ? "erased (--at-source)"
                                          : "the OLTP keeps the person's row: the source system's "
                                            "controller erases it there"}};
  receipt["legal_basis"] =
      "LGPD (Lei 13.709/2018) art. 18, VI: eliminação dos dados pessoais; art. 16";
  // The full declaration is due within 15 days of the request (LGPD art. 19, II).
  receipt["declaration_due_by"] = TimeText(requested + std::chrono::days(15));
  receipt["completed_at"] = NowText();
  auto saved = wh->ExecParams(
      "UPDATE platform.erasure_requests SET receipt = $2::jsonb, completed_at = now() WHERE "
      "request_id = $1::uuid",
      {request_id, receipt.dump()});
  if (!saved.ok()) return saved.status();
  log.Info("subject_forgotten", {{"request_id", request_id},
                                 {"customers", static_cast<uint64_t>(found->cliente_ids.size())}});
  return receipt;
}

}  // namespace pdv::subject
