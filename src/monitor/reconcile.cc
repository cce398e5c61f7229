// monitor::Reconcile: OLTP against RAW's latest state, RAW against the dimension (the
// eligibility rule recomputed here, independently of the transform project), the
// dimension against Redis's records.

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "cache/cache.h"
#include "cache/record.h"
#include "common/erasure.h"
#include "common/lsn.h"
#include "monitor/monitor.h"
#include "pg/connection.h"
#include "redis/client.h"
#include "warehouse/warehouse.h"

namespace pdv::monitor {
namespace {

using Rows = std::map<std::string, std::string>;  // cliente_id -> comparable text

struct Positions {
  std::string oltp, slot, raw, dim, cache;
};

Result<Rows> Query(pg::Connection& conn, const std::string& sql) {
  auto r = conn.Exec(sql);
  if (!r.ok()) return r.status();
  Rows out;
  for (int i = 0; i < r->rows(); ++i) out[r->str(i, 0)] = r->str(i, 1);
  return out;
}

// Source columns of clientes_clube, as both OLTP and RAW have them.
Result<std::vector<std::string>> SourceColumns(pg::Connection& oltp) {
  auto r = oltp.Exec(
      "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND "
      "table_name = 'clientes_clube' ORDER BY ordinal_position");
  if (!r.ok()) return r.status();
  std::vector<std::string> cols;
  for (int i = 0; i < r->rows(); ++i) cols.push_back(r->str(i, 0));
  if (cols.empty()) return Status::Error("OLTP: no table public.clientes_clube");
  return cols;
}

std::string RowText(const std::vector<std::string>& cols, const std::string& alias) {
  std::string out = "concat_ws('|'";
  // Column names come from the source's catalog: quoted, whatever they hold.
  for (const auto& c : cols) {
    out += fmt::format(", coalesce({}.{}::text, '∅')", alias, pg::QuoteIdentifier(c));
  }
  return out + ")";
}

// The columns whose values differ between two concat_ws('|') texts of `columns`.
std::string DifferingColumns(const std::vector<std::string>& columns, std::string_view a,
                             std::string_view b) {
  auto split = [](std::string_view t) {
    std::vector<std::string_view> out;
    for (size_t bar; (bar = t.find('|')) != std::string_view::npos; t.remove_prefix(bar + 1)) {
      out.push_back(t.substr(0, bar));
    }
    out.push_back(t);
    return out;
  };
  auto x = split(a), y = split(b);
  if (x.size() != columns.size() || y.size() != columns.size()) return "values";
  std::string out;
  for (size_t i = 0; i < columns.size(); ++i) {
    if (x[i] != y[i]) out += (out.empty() ? "" : ", ") + columns[i];
  }
  return out;
}

// `columns` names the fields of the compared texts (empty: not named).
Comparison Compare(const std::string& name, const Rows& left, const Rows& right, int show,
                   const std::vector<std::string>& columns = {}, bool show_values = false) {
  Comparison c{.name = name};
  c.left_count = static_cast<int64_t>(left.size());
  c.right_count = static_cast<int64_t>(right.size());
  for (const auto& [id, text] : left) {
    auto it = right.find(id);
    if (it == right.end()) {
      c.keys.push_back("missing " + id);
      if (c.missing++ < show) c.examples.push_back("missing " + id);
    } else if (it->second != text) {
      c.keys.push_back("different " + id);
      if (c.different++ < show) {
        c.examples.push_back(show_values
                                 ? fmt::format("different {}: {} vs {}", id, text, it->second)
                                 : fmt::format("different {}: {}", id,
                                               columns.empty()
                                                   ? std::string("values")
                                                   : DifferingColumns(columns, text, it->second)));
      }
    }
  }
  for (const auto& [id, text] : right) {
    if (left.count(id)) continue;
    c.keys.push_back("extra " + id);
    if (c.extra++ < show) c.examples.push_back("extra " + id);
  }
  return c;
}

}  // namespace

Result<ReconcileReport> ReconcileOnce(const ReconcileOptions& options) {
  const Sources& s = options.sources;
  auto oltp = pg::Connection::Connect(s.oltp_url);
  if (!oltp.ok()) return Status::Error("OLTP: " + oltp.message());
  auto wh = pg::Connection::Connect(s.warehouse_url);
  if (!wh.ok()) return Status::Error("warehouse: " + wh.message());
  auto redis = redis::Client::Connect(s.redis_url);
  if (!redis.ok()) return Status::Error("Redis: " + redis.message());

  // Caught up: CDC has confirmed the OLTP position taken now, every RAW change after the
  // dimension's position is one it needs not show (a delete of a customer it never had),
  // and Redis holds the dimension's position.
  ReconcileReport report;
  auto start_lsn = oltp->Exec("SELECT pg_current_wal_lsn()::text");
  if (!start_lsn.ok()) return start_lsn.status();
  std::string target = start_lsn->str(0, 0);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(options.wait_s);
  Positions pos;
  while (true) {
    auto slot = oltp->ExecParams(
        "SELECT confirmed_flush_lsn::text, confirmed_flush_lsn >= $2::pg_lsn FROM "
        "pg_replication_slots WHERE slot_name = $1",
        {s.slot, target});
    bool cdc_done = slot.ok() && slot->rows() == 1 && slot->get(0, 1) == "t";
    pos.slot = slot.ok() && slot->rows() == 1 ? slot->str(0, 0) : "none";
    auto dim = wh->Exec(
        "SELECT coalesce((SELECT max(_lsn) FROM marts.dim_clientes_clube), '0/0')::text, "
        "coalesce((SELECT max(_cdc_lsn) FROM raw.clientes_clube), '0/0')::text");
    // Not built yet (the first transform run is still to come): not caught up.
    bool not_built = !dim.ok() && dim.status().code() == "42P01";
    if (!dim.ok() && !not_built) return Status::Error("warehouse: " + dim.message());
    if (not_built) {
      if (std::chrono::steady_clock::now() >= deadline) {
        return Status::Error("warehouse: " + dim.message());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    pos.dim = dim->str(0, 0);
    pos.raw = dim->str(0, 1);
    auto pending = wh->ExecParams(
        "SELECT count(*) FROM raw.clientes_clube r WHERE r._cdc_lsn > $1::pg_lsn AND NOT "
        "(r._cdc_op = 'd' AND NOT EXISTS (SELECT 1 FROM marts.dim_clientes_clube d WHERE "
        "d.cliente_id = r.cliente_id AND NOT d._deleted))",
        {pos.dim});
    bool transform_done = pending.ok() && pending->get(0, 0) == "0";
    auto meta = cache::ReadMeta(*redis);
    uint64_t cache_lsn = meta.ok() ? meta->lsn : 0;
    pos.cache = LsnText(cache_lsn);
    auto dim_lsn = ParseLsn(pos.dim);
    bool cache_done = dim_lsn.has_value() && cache_lsn >= *dim_lsn;
    if (cdc_done && transform_done && cache_done) {
      report.caught_up = true;
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  report.positions = fmt::format("OLTP {} (slot confirmed {}), RAW {}, dimension {}, Redis {}",
                                 target, pos.slot, pos.raw, pos.dim, pos.cache);

  auto cols = SourceColumns(*oltp);
  if (!cols.ok()) return cols.status();
  std::vector<std::string> source_cols = *cols;
  auto oltp_rows =
      Query(*oltp, fmt::format("SELECT cliente_id::text, {} FROM public.clientes_clube o",
                               RowText(source_cols, "o")));
  if (!oltp_rows.ok()) return Status::Error("OLTP: " + oltp_rows.message());
  // Customers erased but kept at the source (pdv subject forget): not expected in RAW.
  if (!options.erasure_key.empty()) {
    auto erased = wh->Exec("SELECT hmac FROM platform.erasure_register WHERE kind = 'cliente_id'");
    if (!erased.ok()) return Status::Error("warehouse: " + erased.message());
    std::set<std::string> hmacs;
    for (int i = 0; i < erased->rows(); ++i) hmacs.insert(erased->str(i, 0));
    if (!hmacs.empty()) {
      std::erase_if(*oltp_rows, [&](const auto& row) {
        return hmacs.contains(SubjectHmac(options.erasure_key, kSubjectColumn, row.first));
      });
    }
  }
  auto raw_rows =
      Query(*wh, warehouse::LatestRawStateSql(
                     {.columns = "latest.cliente_id::text, " + RowText(source_cols, "latest")}));
  if (!raw_rows.ok()) return Status::Error("warehouse: " + raw_rows.message());
  report.comparisons.push_back(
      Compare("OLTP → RAW", *oltp_rows, *raw_rows, options.show, source_cols, options.show_values));

  // The POS fields by the rule, from RAW, against the dimension's live rows.
  const std::string pos_fields =
      "concat_ws('|', x.cpf_hash, x.primeiro_nome, x.status_clube, x.opt_in_marketing, "
      "x.ticket_medio_estimado, x.origem_campanha, "
      "extract(epoch FROM x.elegivel_a_partir_de)::bigint, "
      "extract(epoch FROM x.atualizado_em)::bigint)";
  auto expected = Query(
      *wh, fmt::format(
               "SELECT x.cliente_id::text, {} FROM (SELECT r.cliente_id, r.cpf_hash, "
               "split_part(trim(r.nome_completo), ' ', 1) AS primeiro_nome, "
               "upper(trim(r.status_clube)) AS status_clube, coalesce(r.opt_in_marketing, false) "
               "AS opt_in_marketing, r.ticket_medio_estimado::numeric(10, 2) AS "
               "ticket_medio_estimado, trim(r.origem_campanha) AS origem_campanha, CASE WHEN "
               "upper(trim(r.status_clube)) = 'ATIVO' AND r.opt_in_marketing THEN (r.data_cadastro "
               "+ interval '{} minutes') AT TIME ZONE 'UTC' END AS elegivel_a_partir_de, "
               "r.ultima_atualizacao AT TIME ZONE 'UTC' AS atualizado_em FROM ({}) r) x",
               pos_fields, options.grace_minutes, warehouse::LatestRawStateSql({})));
  if (!expected.ok()) return Status::Error("warehouse: " + expected.message());
  auto dim_rows = Query(*wh, fmt::format("SELECT x.cliente_id::text, {} FROM "
                                         "marts.dim_clientes_clube x WHERE NOT x._deleted",
                                         pos_fields));
  if (!dim_rows.ok()) return Status::Error("warehouse: " + dim_rows.message());
  report.comparisons.push_back(
      Compare("RAW → dimension", *expected, *dim_rows, options.show,
              {"cpf_hash", "primeiro_nome", "status_clube", "opt_in_marketing",
               "ticket_medio_estimado", "origem_campanha", "elegivel_a_partir_de", "atualizado_em"},
              options.show_values));

  // The dimension's live customers as the cache encodes them, against every record of the
  // current version in Redis.
  // Read as the cache stage reads it, encoded as it encodes it.
  auto warehouse = warehouse::ConnectPostgresWarehouse(s.warehouse_url);
  if (!warehouse.ok()) return Status::Error("warehouse: " + warehouse.message());
  Rows want, have;
  std::map<std::string, std::string> id_of_field;
  Status read = cache::ReadDimensionRecords(**warehouse, {.live_only = true},
                                            [&](const cache::DimensionRecord& d) -> Status {
                                              std::string field = cache::Layout::CpfField(d.hash);
                                              want[field] = cache::Encode(*d.record);
                                              id_of_field[field] = d.row.cliente_id;
                                              return Status::Ok();
                                            });
  if (!read.ok()) return Status::Error("warehouse: " + read.message());
  auto meta = cache::ReadMeta(*redis);
  if (!meta.ok()) return Status::Error("Redis: " + meta.message());
  cache::Layout layout = meta->layout;
  if (meta->exists) {
    for (uint32_t b = 0; b < layout.buckets(); ++b) {
      Status scanned = cache::ScanBucket(*redis, layout.CpfBucketKey(b),
                                         [&](std::string_view field, std::string_view value) {
                                           have[std::string(field)] = std::string(value);
                                           return Status::Ok();
                                         });
      if (!scanned.ok()) return Status::Error("Redis: " + scanned.message());
    }
  }
  // Report by cliente_id where known, the record's own id otherwise.
  Rows want_by_id, have_by_id;
  for (const auto& [field, bytes] : want) want_by_id[id_of_field[field]] = bytes;
  for (const auto& [field, bytes] : have) {
    auto known = id_of_field.find(field);
    std::string id;
    if (known != id_of_field.end()) {
      id = known->second;
    } else {
      auto rec = cache::Decode(bytes);
      id = rec.ok() ? cache::UuidText(rec->cliente_id) : "(undecodable record)";
    }
    have_by_id[id] = bytes;
  }
  auto redis_cmp = Compare("dimension → Redis", want_by_id, have_by_id, options.show);
  for (auto& e : redis_cmp.examples) {
    if (e.starts_with("different ")) e = e.substr(0, e.find(':')) + ": record differs";
  }
  report.comparisons.push_back(redis_cmp);
  return report;
}

// With a workload running, a change committed between reading OLTP and reading RAW (or
// the dimension, or Redis) looks like a difference for a moment. So a difference counts
// only if every round, each after the pipeline caught up again, shows it for the same
// customer: what was lost or doubled stays; what was in flight does not.
Result<ReconcileReport> Reconcile(const ReconcileOptions& options) {
  auto first = ReconcileOnce(options);
  if (!first.ok() || first->Clean() || !first->caught_up) return first;
  ReconcileReport report = std::move(*first);
  for (int round = 1; round < options.rounds && !report.Clean(); ++round) {
    auto next = ReconcileOnce(options);
    if (!next.ok()) return next;
    if (!next->caught_up) return next;
    for (size_t i = 0; i < report.comparisons.size(); ++i) {
      Comparison& kept = report.comparisons[i];
      const Comparison& now = next->comparisons[i];
      std::vector<std::string> persistent;
      for (const auto& key : kept.keys) {
        if (std::find(now.keys.begin(), now.keys.end(), key) != now.keys.end())
          persistent.push_back(key);
      }
      kept.keys = persistent;
      kept.missing = kept.extra = kept.different = 0;
      std::vector<std::string> examples;
      for (const auto& key : persistent) {
        if (key.starts_with("missing ")) ++kept.missing;
        if (key.starts_with("extra ")) ++kept.extra;
        if (key.starts_with("different ")) ++kept.different;
        if (static_cast<int>(examples.size()) < options.show * 3) {
          // The last round's wording of it (which columns differ), else the key.
          auto said = std::find_if(now.examples.begin(), now.examples.end(),
                                   [&](const std::string& e) { return e.starts_with(key); });
          examples.push_back(said != now.examples.end() ? *said : key);
        }
      }
      kept.examples = std::move(examples);
      kept.left_count = now.left_count;
      kept.right_count = now.right_count;
    }
    report.positions = next->positions;
  }
  return report;
}

std::string FormatReconcile(const ReconcileReport& report) {
  std::string out = fmt::format("pipeline {}: {}\n",
                                report.caught_up ? "caught up" : "NOT caught up", report.positions);
  out += fmt::format("{:<20} {:>10} {:>10} {:>9} {:>7} {:>10}\n", "comparison", "left", "right",
                     "missing", "extra", "different");
  for (const auto& c : report.comparisons) {
    out += fmt::format("{:<20} {:>10} {:>10} {:>9} {:>7} {:>10}\n", c.name, c.left_count,
                       c.right_count, c.missing, c.extra, c.different);
  }
  for (const auto& c : report.comparisons) {
    for (const auto& e : c.examples) out += fmt::format("  {}: {}\n", c.name, e);
  }
  out += report.Clean() ? "clean: no differences\n" : "DIFFERENCES found\n";
  return out;
}

}  // namespace pdv::monitor
