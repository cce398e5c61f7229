#include "subject/relation_rewrite.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>

namespace pdv::subject {
namespace fs = std::filesystem;
namespace {

// One storage relation of a table: a leaf partition's heap, its TOAST table, or an index
// of either.
struct Relation {
  std::string owner;  // the leaf partition (or plain table) VACUUM FULL rewrites
  std::string name;
  bool heap = false;  // the heap or TOAST table: rewritten with its owner
  std::string file;   // relative to the data directory
  int64_t bytes = 0;
};

Result<std::vector<Relation>> RelationsOf(pg::Connection& conn, const std::string& table) {
  auto r = conn.ExecParams(
      // A plain table is its own leaf (pg_partition_tree lists nothing for it).
      "WITH leaf AS (SELECT relid FROM pg_partition_tree($1::regclass) WHERE isleaf UNION "
      "SELECT oid FROM pg_class WHERE oid = $1::regclass AND relkind IN ('r', 'm')), "
      "part AS ("
      " SELECT l.relid AS owner, l.relid AS rel, true AS heap FROM leaf l"
      " UNION ALL SELECT l.relid, c.reltoastrelid, true FROM leaf l JOIN pg_class c ON c.oid = "
      "l.relid WHERE c.reltoastrelid <> 0"
      " UNION ALL SELECT l.relid, i.indexrelid, false FROM leaf l JOIN pg_index i ON i.indrelid "
      "= l.relid"
      " UNION ALL SELECT l.relid, i.indexrelid, false FROM leaf l JOIN pg_class c ON c.oid = "
      "l.relid JOIN pg_index i ON i.indrelid = c.reltoastrelid WHERE c.reltoastrelid <> 0) "
      "SELECT owner::regclass::text, rel::regclass::text, heap, pg_relation_filepath(rel), "
      "pg_relation_size(rel) FROM part",
      {table});
  if (!r.ok()) return r.status();
  std::vector<Relation> out;
  for (int i = 0; i < r->rows(); ++i) {
    out.push_back({.owner = r->str(i, 0),
                   .name = r->str(i, 1),
                   .heap = r->get(i, 2) == std::string_view("t"),
                   .file = r->is_null(i, 3) ? "" : r->str(i, 3),
                   .bytes = std::stoll(r->str(i, 4))});
  }
  return out;
}

// The main fork's segments of a relation (1 GB each: path, path.1, ...), as many as exist.
std::vector<fs::path> Segments(const fs::path& base) {
  std::vector<fs::path> out = {base};
  for (int n = 1;; ++n) {
    fs::path next = base;
    next += "." + std::to_string(n);
    std::error_code ec;
    if (!fs::exists(next, ec)) break;
    out.push_back(next);
  }
  return out;
}

// The catalogs ANALYZE writes sampled column values into: a histogram bound or a most
// common value can be the person's (at 20,000 members each of the 101 bounds of a column
// is one member's value). They are scanned like the tables' relations; when they hold a
// value, the tables are analyzed again (their live rows only, the person's are gone) and
// the catalog rewritten.
constexpr const char* kStatisticsCatalogs[] = {"pg_catalog.pg_statistic",
                                               "pg_catalog.pg_statistic_ext_data"};

}  // namespace

Result<nlohmann::json> RewriteRelationsHolding(pg::Connection& conn,
                                               const std::vector<std::string>& tables,
                                               const std::vector<Needle>& needles,
                                               std::stop_token stop) {
  auto started = std::chrono::steady_clock::now();
  // The pruned pages reach the files: what the scan reads is what the server keeps.
  if (auto r = conn.Exec("CHECKPOINT"); !r.ok()) return r.status();
  auto dir = conn.Exec("SHOW data_directory");
  if (!dir.ok()) return dir.status();
  const fs::path data_directory = dir->str(0, 0);
  std::vector<Relation> relations;
  for (const auto& t : tables) {
    auto of = RelationsOf(conn, t);
    if (!of.ok()) return of.status();
    relations.insert(relations.end(), of->begin(), of->end());
  }
  const size_t table_relations = relations.size();
  std::set<std::string> statistics;  // the catalogs' owner names as RelationsOf gives them
  for (const char* catalog : kStatisticsCatalogs) {
    auto of = RelationsOf(conn, catalog);
    if (!of.ok()) return of.status();
    for (const auto& rel : *of) statistics.insert(rel.owner);
    relations.insert(relations.end(), of->begin(), of->end());
  }
  uint64_t scanned_bytes = 0;
  std::set<std::string> full;                      // owners whose heap or TOAST holds a value
  std::map<std::string, const Relation*> reindex;  // indexes that hold one
  std::map<std::string, int64_t> owner_bytes;
  for (const auto& rel : relations) {
    owner_bytes[rel.owner] += rel.bytes;
    bool holds = true;  // a file this process cannot read might hold them
    if (!rel.file.empty()) {
      auto scan = ScanFileList(Segments(data_directory / rel.file), needles, stop);
      scanned_bytes += scan.bytes;
      holds = !scan.found.empty() || !scan.not_scanned.empty();
    }
    if (!holds) continue;
    if (rel.heap) {
      full.insert(rel.owner);
    } else {
      reindex[rel.name] = &rel;
    }
  }
  if (stop.stop_requested()) return Status::Error("stopped before the tables were rewritten");
  nlohmann::json rewritten = nlohmann::json::array();
  int64_t bytes_rewritten = 0;
  const bool statistics_hold =
      std::any_of(full.begin(), full.end(), [&](const auto& o) { return statistics.contains(o); });
  if (statistics_hold) {
    // New statistics first: the rewrite then leaves only the rows sampled from live data.
    for (const auto& t : tables) {
      if (auto r = conn.Exec("ANALYZE " + t); !r.ok()) return r.status();
    }
  }
  for (const auto& owner : full) {
    if (auto r = conn.Exec("VACUUM FULL " + owner); !r.ok()) {
      if (!statistics.contains(owner)) return r.status();
      return Status::Error(fmt::format(
          "the statistics catalog {} holds a value of the person and this role cannot rewrite "
          "it (VACUUM FULL needs a superuser): {}",
          owner, r.message()));
    }
    rewritten.push_back(
        {{"relation", owner}, {"how", "VACUUM FULL"}, {"bytes", owner_bytes[owner]}});
    bytes_rewritten += owner_bytes[owner];
  }
  for (const auto& [name, rel] : reindex) {
    if (full.contains(rel->owner)) continue;  // rebuilt with its table
    if (auto r = conn.Exec("REINDEX INDEX " + name); !r.ok()) return r.status();
    rewritten.push_back({{"relation", name}, {"how", "REINDEX"}, {"bytes", rel->bytes}});
    bytes_rewritten += rel->bytes;
  }
  return nlohmann::json{
      {"relations_scanned", table_relations},
      {"statistics_rebuilt", statistics_hold},
      {"bytes_scanned", scanned_bytes},
      {"rewritten", rewritten},
      {"bytes_rewritten", bytes_rewritten},
      {"seconds",
       std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()}};
}

}  // namespace pdv::subject
