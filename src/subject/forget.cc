#include <fmt/format.h>

#include <chrono>
#include <set>

#include "common/cpf.h"
#include "common/erasure.h"
#include "common/erasure_register_file.h"
#include "common/random_secret.h"
#include "common/time_text.h"
#include "subject/erase_layers.h"
#include "subject/forget_files.h"
#include "subject/layers.h"

namespace pdv::subject {
namespace fs = std::filesystem;
namespace {

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

// The first request of the register's file that named any of these HMACs ("" if none).
std::string EarlierRequestInFile(const std::vector<ErasureRecord>& records,
                                 const std::vector<std::string>& hmacs) {
  std::set<std::string> wanted(hmacs.begin(), hmacs.end());
  for (const auto& r : records) {
    for (const auto& s : r.subjects) {
      if (wanted.contains(s.hmac)) return r.request_id;
    }
  }
  return "";
}

// The identifiers the file does not hold yet for this request: all of them when no line of
// it covers at_source.
std::vector<ErasedIdentifier> NotInFile(const std::vector<ErasureRecord>& records,
                                        const std::string& request_id, bool at_source,
                                        const std::vector<ErasedIdentifier>& identifiers) {
  std::set<std::pair<std::string, std::string>> held;
  for (const auto& r : records) {
    if (r.request_id != request_id || (at_source && !r.at_source)) continue;
    for (const auto& s : r.subjects) held.insert({s.kind, s.hmac});
  }
  std::vector<ErasedIdentifier> out;
  for (const auto& i : identifiers) {
    if (!held.contains({i.kind, i.hmac})) out.push_back(i);
  }
  return out;
}

}  // namespace

pdv::Result<nlohmann::json> Forget(const Sources& sources, const Selector& who,
                                   const ForgetOptions& options, Logger& log,
                                   std::stop_token stop) {
  if (sources.erasure_key.empty()) {
    return Status::Error("forget needs erasure_key: the register names subjects by HMAC only");
  }
  // The register's file first: one that cannot be read whole stops forget before it
  // changes anything.
  std::vector<ErasureRecord> file_records;
  if (!sources.erasure_register.empty()) {
    auto records = ReadErasureRegisterFile(sources.erasure_register);
    if (!records.ok()) return records.status();
    file_records = std::move(*records);
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
  // A request the restored warehouse lost is still the file's: the same request again.
  if (earlier->empty()) *earlier = EarlierRequestInFile(file_records, hmacs);
  if (found->cliente_ids.empty()) {
    if (!earlier->empty()) {
      auto r = wh->ExecParams(
          "SELECT receipt::text FROM platform.erasure_requests WHERE request_id = $1::uuid",
          {*earlier});
      if (!r.ok()) return r.status();
      if (r->rows() == 0) {
        return nlohmann::json{{"request_id", *earlier},
                              {"already_erased", true},
                              {"receipt",
                               "not in the warehouse (restored from a backup?): pdv "
                               "subject reapply puts the request back"}};
      }
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
  nlohmann::json receipt = {{"request_id", request_id}, {"requested_at", UtcText(requested)}};
  nlohmann::json subject_hmacs = nlohmann::json::array();

  // 1. The register first: its file (fsynced; a restore of the warehouse cannot take it
  // back), then the warehouse's, committed: from now on cdc keeps these ids out of RAW.
  std::vector<ErasedIdentifier> identifiers;
  for (const auto& id : found->cliente_ids) {
    identifiers.push_back({kSubjectColumn, SubjectHmac(key, kSubjectColumn, id)});
  }
  for (const auto& h : found->cpf_hashes) {
    identifiers.push_back({"cpf_hash", SubjectHmac(key, "cpf_hash", h)});
  }
  for (const auto& e : found->emails)
    identifiers.push_back({"email", SubjectHmac(key, "email", e)});
  if (!sources.erasure_register.empty()) {
    ErasureRecord record{
        .request_id = request_id,
        .requested_at = UtcText(requested),
        .at_source = options.at_source,
        .subjects = NotInFile(file_records, request_id, options.at_source, identifiers)};
    // A repeated request that found nothing new adds no line.
    if (!record.subjects.empty()) {
      if (Status s = AppendErasureRegisterFile(sources.erasure_register, record); !s.ok()) return s;
    }
  }
  {
    auto r = wh->ExecParams(
        "INSERT INTO platform.erasure_requests (request_id, at_source) VALUES ($1::uuid, "
        "$2::boolean) ON CONFLICT (request_id) DO UPDATE SET at_source = "
        "erasure_requests.at_source OR EXCLUDED.at_source",
        {request_id, options.at_source ? "true" : "false"});
    if (!r.ok()) return r.status();
  }
  auto remember = [&](const std::string& kind, const std::string& hmac) -> Status {
    if (kind == kSubjectColumn) subject_hmacs.push_back(hmac);
    return wh
        ->ExecParams(
            "INSERT INTO platform.erasure_register (request_id, kind, hmac) VALUES ($1::uuid, "
            "$2, $3) ON CONFLICT (kind, hmac) DO NOTHING",
            {request_id, kind, hmac})
        .status();
  };
  for (const auto& i : identifiers) {
    if (Status s = remember(i.kind, i.hmac); !s.ok()) return s;
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
  // 2-5. Every layer, as reapply does it again after a restore.
  Erasure erasure{.cliente_ids = found->cliente_ids,
                  .cpf_hashes = found->cpf_hashes,
                  .rewrite = options.rewrite || !options.data_dir.empty()};
  if (options.at_source) erasure.source_ids = found->cliente_ids;
  auto layers = EraseFromLayers(tables, sources, erasure, log, stop);
  if (!layers.ok()) return layers.status();
  receipt["layers"] = *layers;
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
       sources.erasure_register.empty()
           ? "a backup taken before the erasure still holds the person, and the register is in "
             "the warehouse only (erasure_register is not set): after a restore, run pdv subject "
             "forget again for this request's subject"
           : "a backup taken before the erasure still holds the person: the request is in the "
             "register file " +
                 sources.erasure_register +
                 ", which a restore of the warehouse does not undo; after a restore, run pdv "
                 "subject reapply (pdv up does at its start) before the stages serve it"},
      {"source_system", options.at_source ? "erased (--at-source)"
                                          : "the OLTP keeps the person's row: the source system's "
                                            "controller erases it there"}};
  receipt["legal_basis"] =
      "LGPD (Lei 13.709/2018) art. 18, VI: eliminação dos dados pessoais; art. 16";
  // The full declaration is due within 15 days of the request (LGPD art. 19, II).
  receipt["declaration_due_by"] = UtcText(requested + std::chrono::days(15));
  receipt["completed_at"] = UtcNowText();
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
