// pdv subject reapply: every erasure of the register's file, applied again after a
// restore brought people back (subject.h).

#include <fmt/format.h>

#include <chrono>
#include <map>
#include <set>

#include "common/erasure.h"
#include "common/erasure_register_file.h"
#include "common/time_text.h"
#include "subject/erase_layers.h"
#include "subject/forget_files.h"
#include "subject/layers.h"

namespace pdv::subject {
namespace fs = std::filesystem;
namespace {

// One request as a register holds it: the union of its lines or rows.
struct Request {
  std::string requested_at;
  bool at_source = false;
  std::set<std::pair<std::string, std::string>> identifiers;  // (kind, hmac)
};
using Requests = std::map<std::string, Request>;  // by request id

Requests FromFile(const std::vector<ErasureRecord>& records) {
  Requests out;
  for (const auto& r : records) {
    Request& q = out[r.request_id];
    if (q.requested_at.empty()) q.requested_at = r.requested_at;
    q.at_source = q.at_source || r.at_source;
    for (const auto& s : r.subjects) q.identifiers.insert({s.kind, s.hmac});
  }
  return out;
}

Result<Requests> FromWarehouse(pg::Connection& wh) {
  auto r = wh.Exec(
      "SELECT q.request_id::text, q.at_source, to_char(q.requested_at AT TIME ZONE 'UTC', "
      "'YYYY-MM-DD HH24:MI:SS.US') || 'Z', r.kind, r.hmac FROM platform.erasure_requests q JOIN "
      "platform.erasure_register r USING (request_id) ORDER BY r.seq");
  if (!r.ok()) return r.status();
  Requests out;
  for (int i = 0; i < r->rows(); ++i) {
    Request& q = out[r->str(i, 0)];
    q.at_source = r->get(i, 1) == std::string_view("t");
    q.requested_at = r->str(i, 2);
    q.identifiers.insert({r->str(i, 3), r->str(i, 4)});
  }
  return out;
}

// What `have` lacks of `want`, request by request (at_source counts as an identifier:
// a request at the source must be that in both).
Requests Missing(const Requests& want, const Requests& have) {
  Requests out;
  for (const auto& [id, q] : want) {
    auto it = have.find(id);
    Request lack{.requested_at = q.requested_at, .at_source = q.at_source};
    for (const auto& i : q.identifiers) {
      // An identifier held under another request is held (the register's key is (kind, hmac)).
      bool held = it != have.end() && it->second.identifiers.contains(i) &&
                  (it->second.at_source || !q.at_source);
      if (!held) {
        for (const auto& [other_id, other] : have) {
          if (other_id != id && other.identifiers.contains(i) && (other.at_source || !q.at_source))
            held = true;
        }
      }
      if (!held) lack.identifiers.insert(i);
    }
    if (!lack.identifiers.empty()) out[id] = std::move(lack);
  }
  return out;
}

size_t CountIdentifiers(const Requests& requests) {
  size_t n = 0;
  for (const auto& [id, q] : requests) n += q.identifiers.size();
  return n;
}

// Puts the file's requests the warehouse lost back into platform.erasure_requests and
// platform.erasure_register, in one transaction.
Status RestoreWarehouseRegister(pg::Connection& wh, const Requests& missing) {
  auto txn = pg::Transaction::Begin(wh);
  if (!txn.ok()) return txn.status();
  for (const auto& [id, q] : missing) {
    auto r = wh.ExecParams(
        "INSERT INTO platform.erasure_requests (request_id, at_source, requested_at) VALUES "
        "($1::uuid, $2::boolean, $3::timestamptz) ON CONFLICT (request_id) DO UPDATE SET "
        "at_source = erasure_requests.at_source OR EXCLUDED.at_source",
        {id, q.at_source ? "true" : "false", q.requested_at});
    if (!r.ok()) return r.status();
    for (const auto& [kind, hmac] : q.identifiers) {
      auto i = wh.ExecParams(
          "INSERT INTO platform.erasure_register (request_id, kind, hmac) VALUES ($1::uuid, $2, "
          "$3) ON CONFLICT (kind, hmac) DO NOTHING",
          {id, kind, hmac});
      if (!i.ok()) return i.status();
    }
  }
  return txn->Commit();
}

// The distinct cliente_ids of `table` whose HMAC is one of `hmacs`.
Status ErasedIdsIn(pg::Connection& conn, const Table& table, const std::string& key,
                   const std::set<std::string>& hmacs, std::set<std::string>* ids) {
  if (hmacs.empty()) return Status::Ok();
  return conn.CopyOut(
      fmt::format("COPY (SELECT DISTINCT cliente_id::text FROM {}) TO STDOUT", table.name),
      [&](std::string_view line) {
        if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
        if (line != "\\N" && hmacs.contains(SubjectHmac(key, kSubjectColumn, line))) {
          ids->emplace(line);
        }
        return Status::Ok();
      });
}

}  // namespace

pdv::Result<nlohmann::json> Reapply(const Sources& sources, const ReapplyOptions& options,
                                    Logger& log, std::stop_token stop) {
  if (sources.erasure_key.empty()) {
    return Status::Error("reapply needs erasure_key: the register names subjects by HMAC only");
  }
  if (sources.erasure_register.empty()) {
    return Status::Error(
        "reapply needs erasure_register: the register's file outside the warehouse (the "
        "warehouse's own register is rolled back by the restore)");
  }
  const std::string& key = sources.erasure_key;
  // Read whole before anything changes: a file that cannot be is an error, and nothing
  // is touched.
  auto records = ReadErasureRegisterFile(sources.erasure_register);
  if (!records.ok()) return records.status();
  auto oltp = pg::Connection::Connect(sources.oltp_url);
  if (!oltp.ok()) return oltp.status();
  auto wh = pg::Connection::Connect(sources.warehouse_url);
  if (!wh.ok()) return wh.status();
  Layers tables(*oltp, *wh);
  const Requests in_file = FromFile(*records);
  auto in_warehouse = FromWarehouse(*wh);
  if (!in_warehouse.ok()) return in_warehouse.status();
  nlohmann::json report = {{"register_file", sources.erasure_register},
                           {"requests", in_file.size()}};

  // 1. The warehouse's requests the file lacks (made before the file was configured):
  // into the file first, so that they too survive the next restore.
  const Requests file_lacks = Missing(*in_warehouse, in_file);
  for (const auto& [id, q] : file_lacks) {
    ErasureRecord record{
        .request_id = id, .requested_at = q.requested_at, .at_source = q.at_source};
    for (const auto& [kind, hmac] : q.identifiers) record.subjects.push_back({kind, hmac});
    if (Status s = AppendErasureRegisterFile(sources.erasure_register, record); !s.ok()) return s;
  }
  // 2. The file's requests the (restored) warehouse lost: back into its register, so
  // that cdc's batches, reconcile and verify see them again.
  const Requests warehouse_lacks = Missing(in_file, *in_warehouse);
  if (Status s = RestoreWarehouseRegister(*wh, warehouse_lacks); !s.ok()) return s;
  report["file_added_from_warehouse"] = CountIdentifiers(file_lacks);
  report["warehouse_register_restored"] = CountIdentifiers(warehouse_lacks);
  if (options.only_if_behind && warehouse_lacks.empty()) {
    report["skipped"] = "the warehouse's register holds every request of the file";
    return report;
  }

  // 3. Whom the layers hold again: every cliente_id of the register, as cdc leaves them
  // out (a cpf_hash or e-mail under a new cliente_id is a new registration, not theirs).
  std::set<std::string> everywhere, at_source;
  for (const auto& [id, q] : *in_warehouse) {
    for (const auto& [kind, hmac] : q.identifiers) {
      if (kind != kSubjectColumn) continue;
      everywhere.insert(hmac);
      if (q.at_source) at_source.insert(hmac);
    }
  }
  for (const auto& [id, q] : in_file) {
    for (const auto& [kind, hmac] : q.identifiers) {
      if (kind != kSubjectColumn) continue;
      everywhere.insert(hmac);
      if (q.at_source) at_source.insert(hmac);
    }
  }
  std::set<std::string> ids, source_ids;
  Status scan = tables.ForEach([&](pg::Connection& conn, const Table& t) {
    return t.warehouse ? ErasedIdsIn(conn, t, key, everywhere, &ids)
                       : ErasedIdsIn(conn, t, key, at_source, &source_ids);
  });
  if (!scan.ok()) return scan;
  ids.insert(source_ids.begin(), source_ids.end());
  report["customers_found"] = ids.size();
  if (!ids.empty()) {
    // Each one as forget finds them: their cpf_hashes (Redis's keys) from every layer.
    Erasure erasure{.cliente_ids = {ids.begin(), ids.end()},
                    .source_ids = {source_ids.begin(), source_ids.end()},
                    .rewrite = options.rewrite || !options.data_dir.empty()};
    std::vector<Needle> needles;
    std::vector<std::string> cpfs;
    for (const auto& id : ids) {
      auto found = Resolve(tables, sources, {.cliente_id = id});
      if (!found.ok()) return found.status();
      erasure.cpf_hashes.insert(found->cpf_hashes.begin(), found->cpf_hashes.end());
      if (!options.data_dir.empty()) {
        auto exported = Export(sources, {.cliente_id = id});
        if (!exported.ok()) return exported.status();
        std::vector<std::string> hashes(found->cpf_hashes.begin(), found->cpf_hashes.end());
        auto listed = CpfsInList(fs::path(options.data_dir) / "cpfs.txt", sources.cpf_key, hashes);
        for (auto& n : NeedlesOf(ValuesOf(*exported, listed.empty() ? "" : listed[0]), listed)) {
          needles.push_back(std::move(n));
        }
        cpfs.insert(cpfs.end(), listed.begin(), listed.end());
      }
    }
    auto layers = EraseFromLayers(tables, sources, erasure, log, stop);
    if (!layers.ok()) return layers.status();
    report["layers"] = *layers;
    if (!options.data_dir.empty()) {
      ForgetOptions files_options{.at_source = !source_ids.empty(), .data_dir = options.data_dir};
      auto files = ForgetFiles(sources, *oltp, *wh, files_options, needles, cpfs, stop);
      if (!files.ok()) return files.status();
      report["files"] = *files;
    }
  }
  // 4. A request whose receipt the restore took (or that a backup caught half done) is
  // complete now; its receipt says what happened.
  auto completed = wh->ExecParams(
      "UPDATE platform.erasure_requests SET completed_at = now(), receipt = "
      "jsonb_build_object('request_id', request_id, 'requested_at', requested_at, "
      "'reapplied_at', $1::text, 'note', 'the warehouse was restored from a backup that did not "
      "hold this request''s completion: pdv subject reapply erased its subjects again from the "
      "register file') WHERE completed_at IS NULL",
      {UtcNowText()});
  if (!completed.ok()) return completed.status();
  report["requests_completed_again"] = completed->affected();
  report["completed_at"] = UtcNowText();
  log.Info("subject_reapplied",
           {{"requests", static_cast<uint64_t>(in_file.size())},
            {"customers", static_cast<uint64_t>(ids.size())},
            {"register_restored", static_cast<uint64_t>(CountIdentifiers(warehouse_lacks))}});
  return report;
}

}  // namespace pdv::subject
