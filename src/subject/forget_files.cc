#include "subject/forget_files.h"

#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <set>

#include "common/cpf.h"
#include "common/cpf_hasher.h"
#include "redis/client.h"
#include "subject/disk_erasure.h"

namespace pdv::subject {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string Text(const nlohmann::json& row, const char* key) {
  auto it = row.find(key);
  return it != row.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

std::vector<IdentifyingValues> ValuesOf(const nlohmann::json& exported, const std::string& cpf) {
  std::vector<IdentifyingValues> out;
  for (const char* layer : {"oltp", "raw", "staging", "dimension"}) {
    auto it = exported.find(layer);
    if (it == exported.end() || !it->is_array()) continue;
    for (const auto& row : *it) {
      out.push_back({.cpf = cpf,
                     .cpf_hash = Text(row, "cpf_hash"),
                     .cliente_id = Text(row, "cliente_id"),
                     .email = Text(row, "email"),
                     .nome_completo = Text(row, "nome_completo"),
                     .telefone = Text(row, "telefone")});
    }
  }
  return out;
}

std::vector<std::string> CpfsInList(const fs::path& cpf_list, const std::string& cpf_key,
                                    const std::vector<std::string>& cpf_hashes) {
  std::vector<std::string> out;
  std::ifstream in(cpf_list);
  if (!in || cpf_key.empty()) return out;
  CpfHasher hasher(cpf_key);
  std::set<std::string> wanted(cpf_hashes.begin(), cpf_hashes.end());
  std::string line;
  while (std::getline(in, line)) {
    auto cpf = Cpf::Parse(line);
    if (cpf.ok() && wanted.count(hasher.Hash(*cpf))) out.push_back(cpf->digits());
  }
  return out;
}

std::vector<Needle> NeedlesOf(const std::vector<IdentifyingValues>& people,
                              const std::vector<std::string>& cpfs) {
  std::vector<IdentifyingValues> all = people;
  for (const auto& c : cpfs) all.push_back({.cpf = c});
  std::set<std::pair<std::string, std::string>> seen;
  std::vector<Needle> out;
  for (const auto& p : all) {
    for (auto& n : NeedlesFor(p)) {
      if (seen.insert({n.label, n.bytes}).second) out.push_back(std::move(n));
    }
  }
  return out;
}

nlohmann::json ScanDataDirectory(const fs::path& data_dir, const std::vector<Needle>& needles,
                                 bool at_source, std::stop_token stop) {
  auto started = std::chrono::steady_clock::now();
  // pdv up's Redis writes uncompressed RDB (localsvc/local_redis.cc).
  auto scan = ScanFiles(data_dir, needles, {.rdb_uncompressed = true}, stop);
  nlohmann::json out = {{"data_dir", data_dir.string()}};
  if (!scan.ok()) {
    out["error"] = scan.message();
    out["clean"] = false;
    return out;
  }
  const std::string source = (data_dir / "oltp").string() + "/";
  nlohmann::json found = nlohmann::json::array(), in_source = nlohmann::json::array();
  for (const auto& f : scan->found) {
    // Which value, never the value itself: the receipt holds no PII.
    nlohmann::json entry = {{"file", fs::relative(f.file, data_dir).string()}, {"value", f.label}};
    (!at_source && f.file.rfind(source, 0) == 0 ? in_source : found).push_back(entry);
  }
  nlohmann::json skipped = nlohmann::json::array();
  for (const auto& s : scan->not_scanned) {
    skipped.push_back({{"file", fs::relative(s.file, data_dir).string()}, {"reason", s.reason}});
  }
  out.update({{"files", scan->files},
              {"bytes", scan->bytes},
              {"seconds",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()},
              {"found", found},
              {"not_scanned", skipped},
              {"clean", found.empty()}});
  if (!at_source) {
    out["source_system"] = in_source;
    out["source_system_note"] =
        "without --at-source the OLTP (the source system) keeps the person's row: its files "
        "are not erased";
  }
  return out;
}

Result<nlohmann::json> ForgetFiles(const Sources& sources, pg::Connection& oltp,
                                   pg::Connection& warehouse, const ForgetOptions& options,
                                   const std::vector<Needle>& needles,
                                   const std::vector<std::string>& cpfs, std::stop_token stop,
                                   bool source_wal) {
  const fs::path dir = options.data_dir;
  nlohmann::json files;
  auto wal = RemoveWalBeforeNow(warehouse, 120s, stop);
  if (!wal.ok()) return Status::Error("the warehouse's WAL: " + wal.message());
  files["wal"] = *wal;
  if (options.at_source && !source_wal) {
    files["oltp_wal"] = {{"removed", false},
                         {"reason",
                          "cdc is not running yet (pdv up's start): its replication slot keeps "
                          "the source's WAL; pdv subject reapply --data-dir, once the platform "
                          "runs, removes it"}};
  } else if (options.at_source) {
    // The slot keeps the source's WAL until cdc confirms what follows the delete.
    auto oltp_wal = RemoveWalBeforeNow(oltp, 120s, stop);
    if (!oltp_wal.ok()) return Status::Error("the OLTP's WAL: " + oltp_wal.message());
    files["oltp_wal"] = *oltp_wal;
  }
  if (!sources.redis_url.empty()) {
    auto redis = redis::Client::Connect(sources.redis_url);
    if (!redis.ok()) return Status::Error("Redis: " + redis.message());
    auto aof = RewriteAppendOnlyFile(*redis, 120s, stop);
    if (!aof.ok()) return Status::Error("Redis: " + aof.message());
    files["aof"] = *aof;
  }
  auto removed = RemoveLinesHolding(dir / "cpfs.txt", cpfs);
  if (!removed.ok()) return removed.status();
  files["cpf_list"] = {{"file", "cpfs.txt"}, {"lines_removed", *removed}};
  files["scan"] = ScanDataDirectory(dir, needles, options.at_source, stop);
  return files;
}

}  // namespace pdv::subject
