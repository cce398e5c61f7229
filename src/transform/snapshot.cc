// Snapshot SQL (snapshot.h).

#include "transform/snapshot.h"

#include <fmt/format.h>

#include "transform/project.h"

namespace pdv::transform {
namespace {

std::vector<std::string> Strings(const nlohmann::json& v) {
  std::vector<std::string> out;
  if (v.is_string()) out.push_back(v.get<std::string>());
  if (v.is_array()) {
    for (const auto& e : v) {
      if (e.is_string()) out.push_back(e.get<std::string>());
    }
  }
  return out;
}

std::string Join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

std::string Columns(const std::vector<std::string>& names, const std::string& alias) {
  std::vector<std::string> out;
  for (const auto& n : names)
    out.push_back((alias.empty() ? "" : alias + ".") + QuoteIdentifier(n));
  return Join(out, ", ");
}

// The key columns of `a` equal those of `b`. unique_key entries are column names or
// expressions; a plain name is quoted.
std::string KeyOf(const std::string& key, const std::string& alias) {
  bool plain = !key.empty() && key.find_first_of(" ()|'\"+-*/,") == std::string::npos;
  return plain ? alias + "." + QuoteIdentifier(key) : key;
}
std::string KeysMatch(const SnapshotConfig& c, const std::string& a, const std::string& b) {
  std::vector<std::string> parts;
  for (const auto& k : c.unique_key) parts.push_back(KeyOf(k, a) + " = " + KeyOf(k, b));
  return Join(parts, " and ");
}
std::string KeyText(const SnapshotConfig& c, const std::string& alias) {
  std::vector<std::string> parts;
  for (const auto& k : c.unique_key) {
    parts.push_back(fmt::format("coalesce(cast({} as text), '')", KeyOf(k, alias)));
  }
  return Join(parts, " || '|' || ");
}

// The time a changed or new row's version starts: its updated_at, or the run's time.
std::string VersionTime(const SnapshotConfig& c, const std::string& alias,
                        const std::string& now_sql) {
  if (!c.updated_at.empty()) return alias + "." + QuoteIdentifier(c.updated_at);
  return now_sql;
}

std::string Current(const SnapshotConfig& c, const std::string& alias) {
  return c.valid_to_current.empty()
             ? alias + ".dbt_valid_to is null"
             : fmt::format("{}.dbt_valid_to = {}", alias, c.valid_to_current);
}

// dbt_valid_to of a current row, with the type of the version time.
std::string OpenValidTo(const SnapshotConfig& c, const std::string& time) {
  std::string null_of_type = fmt::format("nullif({0}, {0})", time);
  return c.valid_to_current.empty()
             ? null_of_type
             : fmt::format("coalesce({}, {})", null_of_type, c.valid_to_current);
}

}  // namespace

Result<SnapshotConfig> ReadSnapshotConfig(const nlohmann::json& config) {
  SnapshotConfig c;
  c.unique_key = Strings(config.value("unique_key", nlohmann::json()));
  if (c.unique_key.empty()) return Status::Error("a snapshot needs a unique_key");
  std::string strategy = config.value("strategy", "");
  if (strategy == "timestamp") {
    c.strategy = SnapshotConfig::Strategy::kTimestamp;
  } else if (strategy == "check") {
    c.strategy = SnapshotConfig::Strategy::kCheck;
  } else {
    return Status::Error(
        fmt::format("snapshot strategy '{}' is not one of timestamp, check", strategy));
  }
  if (config.contains("updated_at") && config["updated_at"].is_string()) {
    c.updated_at = config["updated_at"].get<std::string>();
  }
  if (c.strategy == SnapshotConfig::Strategy::kTimestamp && c.updated_at.empty()) {
    return Status::Error(
        "the timestamp strategy needs updated_at (the column that says when a "
        "row last changed)");
  }
  if (c.strategy == SnapshotConfig::Strategy::kCheck) {
    const auto& cols = config.value("check_cols", nlohmann::json());
    if (cols.is_string() && cols.get<std::string>() == "all") {
      c.check_all = true;
    } else {
      c.check_cols = Strings(cols);
      if (c.check_cols.empty()) {
        return Status::Error("the check strategy needs check_cols: a list of columns, or 'all'");
      }
    }
  }
  std::string hard = config.value("hard_deletes", "");
  if (hard.empty() && ConfigFlag(config, "invalidate_hard_deletes", false)) hard = "invalidate";
  if (hard.empty() || hard == "ignore") {
    c.hard_deletes = SnapshotConfig::HardDeletes::kIgnore;
  } else if (hard == "invalidate") {
    c.hard_deletes = SnapshotConfig::HardDeletes::kInvalidate;
  } else if (hard == "new_record") {
    c.hard_deletes = SnapshotConfig::HardDeletes::kNewRecord;
  } else {
    return Status::Error(
        fmt::format("hard_deletes '{}' is not one of ignore, invalidate, new_record", hard));
  }
  if (config.contains("dbt_valid_to_current") && config["dbt_valid_to_current"].is_string()) {
    c.valid_to_current = config["dbt_valid_to_current"].get<std::string>();
  }
  return c;
}

std::vector<std::string> SnapshotCreateSql(const RelationRef& rel, const std::string& sql,
                                           const SnapshotConfig& c, const std::string& now_sql) {
  std::string time = VersionTime(c, "q", now_sql);
  std::string deleted = c.hard_deletes == SnapshotConfig::HardDeletes::kNewRecord
                            ? ",\n  'False'::text as dbt_is_deleted"
                            : "";
  return {fmt::format("create schema if not exists {}", QuoteIdentifier(rel.schema)),
          fmt::format(
              "create table {} as\nselect q.*,\n  md5({} || '|' || coalesce(cast({} as text), "
              "'')) as dbt_scd_id,\n  {} as dbt_updated_at,\n  {} as dbt_valid_from,\n  {} as "
              "dbt_valid_to{}\nfrom (\n{}\n) q",
              rel.Quoted(), KeyText(c, "q"), time, time, time, OpenValidTo(c, time), deleted, sql)};
}

std::string SnapshotStageSql(const std::string& sql) {
  return fmt::format("create temporary table {} on commit drop as (\n{}\n)", kSnapshotSourceTable,
                     sql);
}

std::vector<std::string> SnapshotMergeSql(const RelationRef& rel, const SnapshotConfig& c,
                                          const std::vector<std::string>& source_columns,
                                          const std::string& now_sql) {
  const bool new_record = c.hard_deletes == SnapshotConfig::HardDeletes::kNewRecord;
  const std::string src = kSnapshotSourceTable;
  const std::string snap = rel.Quoted();
  std::string changed;
  if (c.strategy == SnapshotConfig::Strategy::kTimestamp) {
    changed = fmt::format("s.dbt_valid_from < q.{}", QuoteIdentifier(c.updated_at));
  } else {
    std::vector<std::string> diffs;
    for (const auto& col : c.check_all ? source_columns : c.check_cols) {
      diffs.push_back(fmt::format("q.{0} is distinct from s.{0}", QuoteIdentifier(col)));
    }
    changed = Join(diffs, " or ");
  }
  // A key recorded deleted that comes back is a change too.
  if (new_record) changed = fmt::format("({}) or s.dbt_is_deleted = 'True'", changed);
  std::string meta_cols = "dbt_scd_id, dbt_updated_at, dbt_valid_from, dbt_valid_to";
  if (new_record) meta_cols += ", dbt_is_deleted";
  auto version_values = [&](const std::string& alias, const std::string& time,
                            const char* deleted) {
    return fmt::format("{}, md5({} || '|' || coalesce(cast({} as text), '')), {}, {}, {}{}",
                       Columns(source_columns, alias), KeyText(c, alias), time, time, time,
                       OpenValidTo(c, time), new_record ? fmt::format(", '{}'", deleted) : "");
  };
  std::string insert_into =
      fmt::format("insert into {} ({}, {})", snap, Columns(source_columns, ""), meta_cols);
  std::vector<std::string> out;
  // What changed, and what is gone, against the current rows before anything is written.
  out.push_back(fmt::format(
      "create temporary table __pdv_snapshot_changes on commit drop as\n"
      "select q.*, {} as __pdv_version_time\nfrom {} q\njoin {} s on {}\nwhere {} and ({})",
      VersionTime(c, "q", now_sql), src, snap, KeysMatch(c, "s", "q"), Current(c, "s"), changed));
  if (c.hard_deletes != SnapshotConfig::HardDeletes::kIgnore) {
    out.push_back(fmt::format(
        "create temporary table __pdv_snapshot_deletes on commit drop as\n"
        "select s.*\nfrom {} s\nwhere {}{} and not exists (select 1 from {} q where {})",
        snap, Current(c, "s"), new_record ? " and s.dbt_is_deleted = 'False'" : "", src,
        KeysMatch(c, "s", "q")));
  }
  // New keys: no current row (never seen, or closed by an earlier invalidation).
  out.push_back(
      fmt::format("{}\nselect {}\nfrom {} q\nwhere not exists (select 1 from {} s where {} and {})",
                  insert_into, version_values("q", VersionTime(c, "q", now_sql), "False"), src,
                  snap, KeysMatch(c, "s", "q"), Current(c, "s")));
  // Changed keys: the current version closed, the new one inserted.
  out.push_back(fmt::format(
      "update {} s set dbt_valid_to = c.__pdv_version_time\nfrom __pdv_snapshot_changes c\n"
      "where {} and {}",
      snap, KeysMatch(c, "s", "c"), Current(c, "s")));
  out.push_back(fmt::format("{}\nselect {}\nfrom __pdv_snapshot_changes c", insert_into,
                            version_values("c", "c.__pdv_version_time", "False")));
  if (c.hard_deletes != SnapshotConfig::HardDeletes::kIgnore) {
    out.push_back(
        fmt::format("update {} s set dbt_valid_to = {}\nfrom __pdv_snapshot_deletes d\n"
                    "where s.dbt_scd_id = d.dbt_scd_id and {}",
                    snap, now_sql, Current(c, "s")));
    if (new_record) {
      out.push_back(fmt::format("{}\nselect {}\nfrom __pdv_snapshot_deletes d", insert_into,
                                version_values("d", now_sql, "True")));
    }
  }
  return out;
}

}  // namespace pdv::transform
