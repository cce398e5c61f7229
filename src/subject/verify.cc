#include <fmt/format.h>

#include <chrono>
#include <set>

#include "cache/cache.h"
#include "cache/record.h"
#include "common/cpf.h"
#include "common/cpf_hasher.h"
#include "common/erasure.h"
#include "common/erasure_register_file.h"
#include "common/time_text.h"
#include "redis/client.h"
#include "subject/forget_files.h"
#include "subject/layers.h"

namespace pdv::subject {
namespace {

struct Wanted {
  std::set<std::string> hmacs;  // every kind: cliente_id, cpf_hash, email
  bool at_source = false;
};

// Whether any of the row's identifying values is the subject's.
bool Matches(const Wanted& w, const std::string& key, const char* kind, const std::string& value) {
  return !value.empty() && w.hmacs.contains(SubjectHmac(key, kind, value));
}

}  // namespace

pdv::Result<nlohmann::json> Verify(const Sources& sources, const std::string& request_id,
                                   const VerifyOptions& options) {
  if (sources.erasure_key.empty()) return Status::Error("verify needs erasure_key");
  const std::string& key = sources.erasure_key;
  auto wh = pg::Connection::Connect(sources.warehouse_url);
  if (!wh.ok()) return wh.status();
  auto request = wh->ExecParams(
      "SELECT at_source, completed_at IS NOT NULL FROM platform.erasure_requests WHERE "
      "request_id = $1::uuid",
      {request_id});
  if (!request.ok()) return request.status();
  if (request->rows() == 0) return Status::Error("no erasure request " + request_id);
  Wanted w{.at_source = request->get(0, 0) == std::string_view("t")};
  auto hmacs = wh->ExecParams(
      "SELECT hmac FROM platform.erasure_register WHERE request_id = $1::uuid", {request_id});
  if (!hmacs.ok()) return hmacs.status();
  for (int i = 0; i < hmacs->rows(); ++i) w.hmacs.insert(hmacs->str(i, 0));
  auto oltp = pg::Connection::Connect(sources.oltp_url);
  if (!oltp.ok()) return oltp.status();

  nlohmann::json layers;
  bool clean = request->get(0, 1) == std::string_view("t");
  // Every row of every table: its id, cpf_hash and e-mail against the register.
  Layers tables(*oltp, *wh);
  Status scan = tables.ForEachReported([&](pg::Connection& conn, const Table& t, bool exists) {
    int64_t scanned = 0, found = 0;
    if (exists) {
      Status s = conn.CopyOut(
          fmt::format("COPY (SELECT cliente_id::text, to_jsonb(t)->>'cpf_hash', "
                      "to_jsonb(t)->>'email' FROM {} t) TO STDOUT",
                      t.name),
          [&](std::string_view line) -> Status {
            ++scanned;
            std::string fields[3];
            int f = 0;
            for (char c : line) {
              if (c == '\t') {
                if (++f == 3) break;
              } else if (c != '\n') {
                fields[f] += c;
              }
            }
            for (auto& v : fields) {
              if (v == "\\N") v.clear();
            }
            if (Matches(w, key, kSubjectColumn, fields[0]) ||
                Matches(w, key, "cpf_hash", fields[1]) || Matches(w, key, "email", fields[2])) {
              ++found;
            }
            return Status::Ok();
          });
      if (!s.ok()) return s;
    }
    bool counts = t.warehouse || w.at_source;
    if (counts && found > 0) clean = false;
    layers[t.layer] = {{"table", t.name}, {"scanned", scanned}, {"found", found}};
    if (!counts) layers[t.layer]["kept_at_source"] = true;
    return Status::Ok();
  });
  if (!scan.ok()) return scan;
  // Every Redis key: bucket records by their cliente_id, id-index pointers by cpf field.
  if (!sources.redis_url.empty()) {
    auto redis = redis::Client::Connect(sources.redis_url);
    if (!redis.ok()) return redis.status();
    int64_t keys = 0, entries = 0, found = 0;
    std::string cursor = "0";
    do {
      auto page = redis->Command({"SCAN", cursor, "COUNT", "1000"});
      if (!page.ok()) return page.status();
      cursor = std::string(page->element(0)->str, page->element(0)->len);
      const redisReply* names = page->element(1);
      for (size_t i = 0; i < names->elements; ++i) {
        std::string name(names->element[i]->str, names->element[i]->len);
        ++keys;
        bool cpf_bucket = name.starts_with(cache::kCpfBucketPrefix);
        if (!cpf_bucket && !name.starts_with(cache::kIdBucketPrefix)) continue;
        Status s = cache::ScanBucket(*redis, name, [&](std::string_view, std::string_view value) {
          ++entries;
          if (!cpf_bucket) return Status::Ok();
          auto rec = cache::Decode(value);
          if (rec.ok() && Matches(w, key, kSubjectColumn, cache::UuidText(rec->cliente_id)))
            ++found;
          return Status::Ok();
        });
        if (!s.ok()) return s;
      }
    } while (cursor != "0");
    if (found > 0) clean = false;
    layers["redis"] = {{"keys_scanned", keys}, {"entries_scanned", entries}, {"found", found}};
  }
  nlohmann::json files;
  if (!options.data_dir.empty()) {
    // Byte by byte, for the values this proof can know: the CPF given, and its hash.
    std::vector<std::string> cpfs;
    std::vector<IdentifyingValues> people;
    if (!options.cpf.empty()) {
      auto cpf = Cpf::Parse(options.cpf);
      if (!cpf.ok()) return cpf.status();
      cpfs.push_back(cpf->digits());
      if (!sources.cpf_key.empty()) {
        people.push_back({.cpf_hash = CpfHasher(sources.cpf_key).Hash(*cpf)});
      }
    }
    files = ScanDataDirectory(options.data_dir, NeedlesOf(people, cpfs), w.at_source, {});
    files["values_searched"] = options.cpf.empty()
                                   ? "none: give --cpf (the register keeps HMACs only; forget's "
                                     "own scan searched every value)"
                                   : "the CPF given (digits and formatted) and its hash";
    if (!files.value("clean", false)) clean = false;
  }
  // The request must survive a restore of the warehouse: the register's file holds it.
  nlohmann::json register_file;
  if (!sources.erasure_register.empty()) {
    auto records = ReadErasureRegisterFile(sources.erasure_register);
    if (!records.ok()) return records.status();
    bool holds = false;
    for (const auto& r : *records) holds = holds || r.request_id == request_id;
    register_file = {{"file", sources.erasure_register}, {"holds_request", holds}};
    if (!holds) {
      register_file["note"] =
          "a restore of the warehouse would bring the subject back: run pdv "
          "subject reapply (it copies the warehouse's requests into the file)";
      clean = false;
    }
  }
  nlohmann::json proof{{"request_id", request_id},
                       {"checked_at", UtcNowText()},
                       {"layers", layers},
                       {"clean", clean}};
  if (!files.is_null()) proof["files"] = files;
  if (!register_file.is_null()) proof["register_file"] = register_file;
  return proof;
}

}  // namespace pdv::subject
