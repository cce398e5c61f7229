#include <fmt/format.h>

#include "cache/cache.h"
#include "cache/record.h"
#include "common/cpf.h"
#include "common/cpf_hasher.h"
#include "redis/client.h"
#include "subject/layers.h"

namespace pdv::subject {

Status NotFound(const Selector& who) {
  return Status::Error(
      fmt::format("no customer with this {} in any layer", who.cpf.empty() ? "cliente_id" : "CPF"));
}

std::string UuidArray(const std::vector<std::string>& ids) {
  std::string out = "{";
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + ids[i];
  return out + "}";
}

pdv::Result<Found> Resolve(Layers& layers, const Sources& sources, const Selector& who) {
  Found found;
  std::set<std::string> ids;
  if (!who.cpf.empty()) {
    if (sources.cpf_key.empty()) {
      return Status::Error("naming a subject by CPF needs cpf_key (or use --cliente-id)");
    }
    auto cpf = Cpf::Parse(who.cpf);
    if (!cpf.ok()) return Status::Error("--cpf: " + cpf.message());
    std::string hash = CpfHasher(sources.cpf_key).Hash(*cpf);
    found.named_cpf_hash = hash;
    Status s = layers.ForEach([&](pg::Connection& conn, const Table& t) {
      if (!t.has_cpf_hash) return Status::Ok();
      auto r = conn.ExecParams(
          fmt::format("SELECT DISTINCT cliente_id::text FROM {} WHERE cpf_hash = $1", t.name),
          {hash});
      if (!r.ok()) return r.status();
      for (int i = 0; i < r->rows(); ++i) ids.insert(r->str(i, 0));
      return Status::Ok();
    });
    if (!s.ok()) return s;
  } else {
    auto id = cache::UuidBytes(who.cliente_id);
    if (!id.ok()) return Status::Error(fmt::format("--cliente-id {}: not a UUID", who.cliente_id));
    // Known to some layer, or no one.
    Status s = layers.ForEach([&](pg::Connection& conn, const Table& t) {
      auto r = conn.ExecParams(
          fmt::format("SELECT 1 FROM {} WHERE cliente_id = $1::uuid LIMIT 1", t.name),
          {cache::UuidText(*id)});
      if (!r.ok()) return r.status();
      if (r->rows()) ids.insert(cache::UuidText(*id));
      return Status::Ok();
    });
    if (!s.ok()) return s;
  }
  found.cliente_ids.assign(ids.begin(), ids.end());
  if (ids.empty()) return found;
  // Every cpf_hash and e-mail any layer holds for these ids (an e-mail changed over time
  // is in RAW's older versions).
  Status s = layers.ForEach([&](pg::Connection& conn, const Table& t) {
    auto r = conn.ExecParams(
        fmt::format("SELECT DISTINCT to_jsonb(t)->>'cpf_hash', to_jsonb(t)->>'email' FROM {} t "
                    "WHERE cliente_id = ANY($1::uuid[])",
                    t.name),
        {UuidArray(found.cliente_ids)});
    if (!r.ok()) return r.status();
    for (int i = 0; i < r->rows(); ++i) {
      if (!r->str(i, 0).empty()) found.cpf_hashes.insert(r->str(i, 0));
      if (!r->str(i, 1).empty()) found.emails.insert(r->str(i, 1));
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return found;
}

namespace {

nlohmann::json RecordJson(const cache::CustomerRecord& r) {
  nlohmann::json j = {{"cliente_id", cache::UuidText(r.cliente_id)},
                      {"ativo", r.ativo},
                      {"opt_in_marketing", r.opt_in_marketing},
                      {"atualizado_em", r.atualizado_em},
                      {"ticket_centavos", r.ticket_centavos},
                      {"origem_campanha", r.origem_campanha},
                      {"primeiro_nome", r.primeiro_nome},
                      {"lsn", r.lsn}};
  j["elegivel_a_partir_de"] =
      r.elegivel_a_partir_de ? nlohmann::json(*r.elegivel_a_partir_de) : nlohmann::json();
  return j;
}

}  // namespace

pdv::Result<nlohmann::json> Export(const Sources& sources, const Selector& who) {
  auto oltp = pg::Connection::Connect(sources.oltp_url);
  if (!oltp.ok()) return oltp.status();
  auto wh = pg::Connection::Connect(sources.warehouse_url);
  if (!wh.ok()) return wh.status();
  Layers layers(*oltp, *wh);
  auto found = Resolve(layers, sources, who);
  if (!found.ok()) return found.status();
  if (found->cliente_ids.empty()) return NotFound(who);
  nlohmann::json doc = {{"subject", {{"cliente_ids", found->cliente_ids}}}};
  Status read = layers.ForEachReported([&](pg::Connection& conn, const Table& t, bool exists) {
    nlohmann::json& rows = doc[t.layer] = nlohmann::json::array();
    if (!exists) return Status::Ok();
    // RAW: every version, oldest first, with its _cdc_ columns (LSN, operation, when
    // committed at the source, when deleted, when loaded).
    std::string order = std::string(t.name) == kRaw.name ? "_cdc_lsn, _cdc_seq" : "cliente_id";
    auto r = conn.ExecParams(fmt::format("SELECT to_jsonb(t)::text FROM {} t WHERE cliente_id "
                                         "= ANY($1::uuid[]) ORDER BY {}",
                                         t.name, order),
                             {UuidArray(found->cliente_ids)});
    if (!r.ok()) return r.status();
    for (int i = 0; i < r->rows(); ++i) rows.push_back(nlohmann::json::parse(r->str(i, 0)));
    return Status::Ok();
  });
  if (!read.ok()) return read;
  nlohmann::json records = nlohmann::json::array();
  if (!sources.redis_url.empty()) {
    auto redis = redis::Client::Connect(sources.redis_url);
    if (!redis.ok()) return redis.status();
    for (const std::string& hash : found->cpf_hashes) {
      auto rec = cache::FindCustomer(*redis, hash);
      if (!rec.ok()) return rec.status();
      // A cpf_hash is one person's; the record's own id says it is this subject's.
      if (*rec && std::find(found->cliente_ids.begin(), found->cliente_ids.end(),
                            cache::UuidText((*rec)->cliente_id)) != found->cliente_ids.end()) {
        records.push_back(RecordJson(**rec));
      }
    }
  }
  doc["redis"] = records;
  return doc;
}

}  // namespace pdv::subject
