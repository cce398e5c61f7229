// CollectStatus and FormatStatus: each stage's position, lag, rate and health, read from
// the OLTP server, the warehouse, Redis and the API.

#include <fmt/format.h>

#include <chrono>
#include <map>
#include <optional>
#include <regex>
#include <thread>

#include "cache/cache.h"
#include "cache/record.h"
#include "common/lsn.h"
#include "common/time_text.h"
#include "monitor/http_client.h"
#include "monitor/monitor.h"
#include "pg/connection.h"
#include "redis/client.h"

namespace pdv::monitor {
namespace {

using Clock = std::chrono::steady_clock;

// One reading of every server.
struct Sample {
  Clock::time_point at;
  std::string oltp_error, warehouse_error, redis_error, api_error;
  // OLTP
  std::string wal_lsn;
  int64_t oltp_rows = 0, oltp_changes = 0;
  bool slot_exists = false, slot_active = false;
  std::string slot_flush_lsn;
  int64_t slot_lag_bytes = 0;
  // Warehouse
  std::optional<std::string> checkpoint_lsn;
  double checkpoint_age_s = 0;
  int64_t raw_rows = 0, raw_inserted = 0;
  std::string raw_max_lsn = "0/0";
  std::optional<double> raw_oldest_age_s;  // RAW's oldest version (retention, LGPD art. 16)
  std::optional<std::string> dim_lsn;
  int64_t dim_rows = 0, dim_inserted = 0;
  int64_t transform_lag_rows = 0, cache_lag_rows = 0, cache_applied = 0;
  double transform_lag_s = 0, cache_lag_s = 0;
  // Active/standby: each stage's instances seen in the last 10 s (pg/lease.h)
  std::map<std::string, nlohmann::json> instances;
  // Redis
  std::optional<std::string> cache_lsn;
  nlohmann::json freshness;
  // API
  bool api_ready = false;
  double api_requests = 0;
};

std::optional<std::string> Value(pg::Connection& conn, const std::string& sql) {
  auto r = conn.Exec(sql);
  if (!r.ok() || r->rows() == 0 || r->is_null(0, 0)) return std::nullopt;
  return r->str(0, 0);
}

int64_t Int(const std::optional<std::string>& v) { return v ? std::stoll(*v) : 0; }
double Real(const std::optional<std::string>& v) { return v ? std::stod(*v) : 0; }

// The connections a sampler keeps between readings, reopened when lost, so that a monitor
// reading every second does not start a server backend each time.
struct Links {
  std::optional<pg::Connection> oltp, warehouse;
  std::optional<redis::Client> redis;
  std::unique_ptr<HttpClient> api;
};

// `link`, connected to `url` (again if it was lost); nullptr and `*error` when it cannot be.
pg::Connection* Open(std::optional<pg::Connection>& link, const std::string& url,
                     std::string* error) {
  if (link && !link->broken()) return &*link;
  link.reset();
  auto conn = pg::Connection::Connect(url);
  if (!conn.ok()) {
    *error = conn.message();
    return nullptr;
  }
  link.emplace(std::move(*conn));
  return &*link;
}

void ReadOltp(const Sources& s, Links& links, Sample& out) {
  pg::Connection* conn = Open(links.oltp, s.oltp_url, &out.oltp_error);
  if (!conn) return;
  out.wal_lsn = Value(*conn, "SELECT pg_current_wal_lsn()::text").value_or("0/0");
  const std::string stats =
      "FROM pg_stat_user_tables WHERE schemaname = 'public' AND relname = 'clientes_clube'";
  // Statistics, not count(*): the monitor must not load the OLTP table. reltuples covers
  // a table bulk-loaded in the transaction that created it (not in n_live_tup).
  out.oltp_rows = Int(Value(*conn,
                            "SELECT greatest(n_live_tup, (SELECT reltuples::bigint FROM "
                            "pg_class WHERE oid = 'public.clientes_clube'::regclass)) " +
                                stats));
  out.oltp_changes = Int(Value(*conn, "SELECT n_tup_ins + n_tup_upd + n_tup_del " + stats));
  auto slot = conn->ExecParams(
      "SELECT confirmed_flush_lsn::text, active, "
      "pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint "
      "FROM pg_replication_slots WHERE slot_name = $1",
      {s.slot});
  if (slot.ok() && slot->rows() == 1) {
    out.slot_exists = true;
    out.slot_flush_lsn = slot->str(0, 0);
    out.slot_active = slot->get(0, 1) == "t";
    out.slot_lag_bytes = slot->is_null(0, 2) ? 0 : std::stoll(slot->str(0, 2));
  }
}

void ReadWarehouse(const Sources& s, Links& links, const Sample* previous, Sample& out) {
  pg::Connection* conn = Open(links.warehouse, s.warehouse_url, &out.warehouse_error);
  if (!conn) return;
  std::string slot = conn->Literal(s.slot);
  out.checkpoint_lsn =
      Value(*conn, "SELECT commit_lsn::text FROM raw._cdc_checkpoint WHERE slot = " + slot);
  out.checkpoint_age_s = Real(
      Value(*conn,
            "SELECT extract(epoch FROM now() - updated_at) FROM raw._cdc_checkpoint WHERE slot = " +
                slot));
  auto stat = [&](const char* schema, const char* table, const char* column) {
    return Int(Value(*conn, fmt::format("SELECT {} FROM pg_stat_user_tables WHERE schemaname = "
                                        "'{}' AND relname = '{}'",
                                        column, schema, table)));
  };
  out.raw_rows = stat("raw", "clientes_clube", "n_live_tup");
  out.raw_inserted = stat("raw", "clientes_clube", "n_tup_ins");
  out.raw_max_lsn =
      Value(*conn, "SELECT coalesce(max(_cdc_lsn), '0/0')::text FROM raw.clientes_clube")
          .value_or("0/0");
  // The oldest version by position, through the (_cdc_lsn, _cdc_seq) index: no scan.
  if (auto age =
          Value(*conn,
                "SELECT extract(epoch FROM now() - coalesce(_cdc_committed_at, "
                "_loaded_at)) FROM raw.clientes_clube ORDER BY _cdc_lsn, _cdc_seq LIMIT 1")) {
    out.raw_oldest_age_s = std::stod(*age);
  }
  out.dim_lsn = Value(*conn, "SELECT max(_lsn)::text FROM marts.dim_clientes_clube");
  if (auto r = conn->Exec(
          "SELECT i.stage, i.instance, i.role, CASE WHEN i.role = 'active' THEN l.token END FROM "
          "platform.stage_instances i LEFT JOIN platform.stage_leases l ON l.stage = i.stage AND "
          "l.holder = i.instance WHERE i.seen_at > now() - interval '10 s' ORDER BY i.stage, "
          "i.role, i.instance");
      r.ok()) {
    for (int i = 0; i < r->rows(); ++i) {
      nlohmann::json one = {{"instance", r->str(i, 1)}, {"role", r->str(i, 2)}};
      if (!r->is_null(i, 3)) one["token"] = std::stoll(r->str(i, 3));
      auto& list = out.instances[r->str(i, 0)];
      if (list.is_null()) list = nlohmann::json::array();
      list.push_back(one);
    }
  }
  out.dim_rows = stat("marts", "dim_clientes_clube", "n_live_tup");
  out.dim_inserted = stat("marts", "dim_clientes_clube", "n_tup_ins");
  // Lags: the RAW changes past each stage's position, and how old the oldest one is.
  auto lag = [&](const std::string& lsn, int64_t* rows, double* seconds) {
    auto r = conn->ExecParams(
        "SELECT count(*), coalesce(extract(epoch FROM now() - min(_cdc_committed_at)), 0) "
        "FROM raw.clientes_clube WHERE _cdc_lsn > $1::pg_lsn",
        {lsn});
    if (!r.ok() || r->rows() == 0) return;
    *rows = std::stoll(r->str(0, 0));
    *seconds = std::stod(r->str(0, 1));
  };
  lag(out.dim_lsn.value_or("0/0"), &out.transform_lag_rows, &out.transform_lag_s);
  if (out.cache_lsn) {
    lag(*out.cache_lsn, &out.cache_lag_rows, &out.cache_lag_s);
    if (previous && previous->cache_lsn) {
      out.cache_applied = Int(Value(
          *conn, fmt::format("SELECT count(*) FROM marts.dim_clientes_clube WHERE _lsn > "
                             "{}::pg_lsn AND _lsn <= {}::pg_lsn",
                             conn->Literal(*previous->cache_lsn), conn->Literal(*out.cache_lsn))));
    }
  }
}

void ReadRedis(const Sources& s, Links& links, Sample& out) {
  if (!links.redis) {
    auto client = redis::Client::Connect(s.redis_url);
    if (!client.ok()) {
      out.redis_error = client.message();
      return;
    }
    links.redis.emplace(std::move(*client));
  }
  redis::Client* client = &*links.redis;
  auto meta = cache::ReadMeta(*client);
  if (!meta.ok()) {
    out.redis_error = meta.message();
    if (redis::IsConnectionError(meta.status())) links.redis.reset();  // reconnect next time
    return;
  }
  // pdv:meta keeps the position as a number; show it as an LSN.
  if (meta->exists) out.cache_lsn = LsnText(meta->lsn);
  auto status = client->Command({"GET", kStatusKey});
  if (status.ok() && !status->is_nil()) {
    auto j = nlohmann::json::parse(status->str(), nullptr, false);
    if (j.is_object() && j.contains("freshness")) out.freshness = j["freshness"];
  }
}

void ReadApi(const Sources& s, Links& links, Sample& out) {
  if (!links.api) links.api = std::make_unique<HttpClient>(s.api_listen, 500, s.api_ca_cert);
  HttpClient& http = *links.api;
  auto ready = http.Get("/ready");
  if (!ready.ok()) {
    out.api_error = ready.message();
    return;
  }
  out.api_ready = ready->status == 200;
  if (!out.api_ready) out.api_error = ready->body;
  auto metrics = http.Get("/metrics");
  if (!metrics.ok()) return;
  // Sum of pdv_api_requests_total over its labels.
  size_t pos = 0;
  const std::string name = "pdv_api_requests_total{";
  while ((pos = metrics->body.find(name, pos)) != std::string::npos) {
    size_t line_end = metrics->body.find('\n', pos);
    size_t space = metrics->body.rfind(' ', line_end);
    out.api_requests += std::stod(metrics->body.substr(space + 1, line_end - space - 1));
    pos = line_end;
  }
}

Sample Read(const Sources& s, Links& links, const Sample* previous) {
  Sample out;
  out.at = Clock::now();
  ReadRedis(s, links, out);
  ReadOltp(s, links, out);
  ReadWarehouse(s, links, previous, out);
  ReadApi(s, links, out);
  return out;
}

// What anyone may see of a stage whose server does not answer (PublicStatus): the
// state, never the error, which names the server.
constexpr char kUnreachable[] = "unreachable (the cause: `pdv status`, or the stage's log)";

// `detail` is for the operator (pdv status: errors name their server); `public_detail`
// is what PublicStatus shows instead: a fixed text that names no server.
nlohmann::json Stage(const std::string& name, const std::string& health, const std::string& detail,
                     const std::string& public_detail) {
  return {{"name", name},        {"health", health},
          {"detail", detail},    {"public_detail", public_detail},
          {"position", nullptr}, {"rows", nullptr},
          {"rate", nullptr},     {"lag_seconds", nullptr},
          {"lag_rows", nullptr}, {"lag_bytes", nullptr}};
}

double Rate(int64_t now, int64_t before, double seconds) {
  return seconds > 0 && now >= before ? static_cast<double>(now - before) / seconds : 0;
}

nlohmann::json Build(const Sources& sources, const Sample& a, const Sample& b) {
  double dt = std::chrono::duration<double>(b.at - a.at).count();
  nlohmann::json stages = nlohmann::json::array();

  auto gen = Stage("generate", b.oltp_error.empty() ? "ok" : "down",
                   b.oltp_error.empty() ? "OLTP public.clientes_clube" : b.oltp_error,
                   b.oltp_error.empty() ? "OLTP public.clientes_clube" : kUnreachable);
  if (b.oltp_error.empty()) {
    gen["position"] = b.wal_lsn;
    gen["rows"] = b.oltp_rows;
    gen["rate"] = Rate(b.oltp_changes, a.oltp_changes, dt);
    gen["lag_seconds"] = 0;
    gen["lag_rows"] = 0;
  }
  stages.push_back(gen);

  std::string cdc_health = "ok", cdc_detail = "slot → raw.clientes_clube";
  std::string cdc_public;  // the detail, unless it is an error
  if (!b.oltp_error.empty() || !b.warehouse_error.empty()) {
    cdc_health = "down";
    cdc_detail = !b.oltp_error.empty() ? b.oltp_error : b.warehouse_error;
    cdc_public = kUnreachable;
  } else if (!b.slot_exists) {
    cdc_health = "waiting";
    cdc_detail = "no replication slot yet";
  } else if (!b.slot_active) {
    cdc_health = "down";
    cdc_detail = "replication slot not streaming";
  } else if (b.slot_lag_bytes > 64 * 1024 * 1024) {
    cdc_health = "lagging";
  }
  auto cdc = Stage("cdc", cdc_health, cdc_detail, cdc_public.empty() ? cdc_detail : cdc_public);
  if (b.warehouse_error.empty()) {
    cdc["position"] = b.checkpoint_lsn ? nlohmann::json(*b.checkpoint_lsn) : nlohmann::json();
    cdc["rows"] = b.raw_rows;
    cdc["rate"] = Rate(b.raw_inserted, a.raw_inserted, dt);
    cdc["lag_bytes"] = b.slot_lag_bytes;
    cdc["lag_seconds"] = b.slot_lag_bytes > 0 ? b.checkpoint_age_s : 0.0;
    cdc["raw_oldest_version_age_s"] =
        b.raw_oldest_age_s ? nlohmann::json(*b.raw_oldest_age_s) : nlohmann::json();
  }
  stages.push_back(cdc);

  std::string tr_health = "ok";
  if (!b.warehouse_error.empty()) {
    tr_health = "down";
  } else if (!b.dim_lsn) {
    tr_health = "waiting";
  } else if (b.transform_lag_s > 10) {
    tr_health = "lagging";
  }
  constexpr char kTransformDetail[] = "raw → staging → marts.dim_clientes_clube";
  auto tr = Stage("transform", tr_health,
                  b.warehouse_error.empty() ? kTransformDetail : b.warehouse_error,
                  b.warehouse_error.empty() ? kTransformDetail : kUnreachable);
  if (b.warehouse_error.empty()) {
    tr["position"] = b.dim_lsn ? nlohmann::json(*b.dim_lsn) : nlohmann::json();
    tr["rows"] = b.dim_rows;
    tr["rate"] = Rate(b.dim_inserted, a.dim_inserted, dt);
    tr["lag_rows"] = b.transform_lag_rows;
    tr["lag_seconds"] = b.transform_lag_s;
  }
  stages.push_back(tr);

  std::string cache_health = "ok";
  if (!b.redis_error.empty()) {
    cache_health = "down";
  } else if (!b.cache_lsn) {
    cache_health = "waiting";
  } else if (b.cache_lag_s > 10) {
    cache_health = "lagging";
  }
  auto cache =
      Stage("cache", cache_health, b.redis_error.empty() ? "dimension → Redis" : b.redis_error,
            b.redis_error.empty() ? "dimension → Redis" : kUnreachable);
  if (b.redis_error.empty() && b.cache_lsn) {
    cache["position"] = *b.cache_lsn;
    cache["rate"] = dt > 0 ? b.cache_applied / dt : 0;
    cache["lag_rows"] = b.cache_lag_rows;
    cache["lag_seconds"] = b.cache_lag_s;
  }
  stages.push_back(cache);

  // Where the API listens is for the operator only.
  auto serve = Stage("serve", b.api_error.empty() && b.api_ready ? "ok" : "down",
                     b.api_error.empty() ? "HTTP API on " + sources.api_listen : b.api_error,
                     b.api_error.empty() ? "HTTP API" : kUnreachable);
  if (b.api_error.empty()) {
    serve["rate"] =
        b.api_requests >= a.api_requests && dt > 0 ? (b.api_requests - a.api_requests) / dt : 0;
    serve["lag_seconds"] = 0;
    serve["lag_rows"] = 0;
  }
  stages.push_back(serve);

  nlohmann::json out;
  out["generated_at"] = TimestampText(std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
  for (auto& stage : stages) {
    auto it = b.instances.find(stage["name"].get<std::string>());
    if (it != b.instances.end()) stage["instances"] = it->second;
  }
  out["stages"] = stages;
  out["freshness"] = b.freshness.is_null() ? nlohmann::json::object() : b.freshness;
  return out;
}

}  // namespace

nlohmann::json PublicStatus(const nlohmann::json& status) {
  if (!status.is_object()) {
    return {{"stages", nlohmann::json::array()},
            {"freshness", nlohmann::json::object()},
            {"note", "unreadable status"}};
  }
  nlohmann::json out = status;
  // A status published by a monitor older than public_detail: its details are shown
  // only when healthy and naming nothing that looks like a server.
  static const std::regex names_a_server(
      R"(://|host=|port=|user=|dbname=|connect|\b\d{1,3}(\.\d{1,3}){3}\b|@|:\d{2,5}\b|\bon\b)");
  if (out.contains("stages") && out["stages"].is_array()) {
    for (auto& stage : out["stages"]) {
      if (!stage.is_object()) continue;
      // Instances by role and lease token only: their names are hosts and process ids.
      if (stage.contains("instances") && stage["instances"].is_array()) {
        for (auto& instance : stage["instances"]) {
          if (instance.is_object()) instance.erase("instance");
        }
      }
      std::string shown = kUnreachable;
      if (stage.contains("public_detail") && stage["public_detail"].is_string()) {
        shown = stage["public_detail"].get<std::string>();
      } else if (stage.value("health", "") == "ok" && stage.contains("detail") &&
                 stage["detail"].is_string() &&
                 !std::regex_search(stage["detail"].get<std::string>(), names_a_server)) {
        shown = stage["detail"].get<std::string>();
      }
      stage["detail"] = shown;
      stage.erase("public_detail");
    }
  }
  // The probe's error is libpq's or the HTTP client's text (role, host, port, database):
  // anyone sees that the probe fails, the operator why.
  if (out.contains("freshness") && out["freshness"].is_object()) {
    auto& f = out["freshness"];
    if (f.contains("last_error")) {
      bool failing = f["last_error"].is_string() && !f["last_error"].get<std::string>().empty();
      f["last_error"] =
          failing ? "the probe fails (the cause: `pdv status`, or the monitor's log)" : "";
    }
  }
  return out;
}

struct StatusSampler::State {
  Links links;
  std::optional<Sample> previous;
};

StatusSampler::StatusSampler(Sources sources)
    : sources_(std::move(sources)), state_(std::make_unique<State>()) {}
StatusSampler::~StatusSampler() = default;

nlohmann::json StatusSampler::Next() {
  Sample now = Read(sources_, state_->links, state_->previous ? &*state_->previous : nullptr);
  nlohmann::json out = Build(sources_, state_->previous.value_or(now), now);
  state_->previous = std::move(now);
  return out;
}

nlohmann::json CollectStatus(const Sources& sources, int window_ms) {
  StatusSampler sampler(sources);
  sampler.Next();
  std::this_thread::sleep_for(std::chrono::milliseconds(window_ms));
  return sampler.Next();
}

std::string FormatStatus(const nlohmann::json& status) {
  std::string out;
  auto num = [](const nlohmann::json& v, const char* fmt_spec) -> std::string {
    if (v.is_null()) return "-";
    return fmt::format(fmt::runtime(fmt_spec), v.get<double>());
  };
  out += fmt::format("{:<10} {:<8} {:>14} {:>11} {:>10} {:>10} {:>9}  {}\n", "stage", "health",
                     "position", "rows", "rate/s", "lag s", "lag rows", "detail");
  for (const auto& s : status["stages"]) {
    out += fmt::format("{:<10} {:<8} {:>14} {:>11} {:>10} {:>10} {:>9}  {}\n",
                       s["name"].get<std::string>(), s["health"].get<std::string>(),
                       s["position"].is_null() ? "-" : s["position"].get<std::string>(),
                       num(s["rows"], "{:.0f}"), num(s["rate"], "{:.1f}"),
                       num(s["lag_seconds"], "{:.3f}"), num(s["lag_rows"], "{:.0f}"),
                       s["detail"].get<std::string>());
  }
  for (const auto& s : status["stages"]) {
    if (!s.contains("instances")) continue;
    std::string line;
    for (const auto& i : s["instances"]) {
      line += fmt::format("{}{} {}", line.empty() ? "" : ", ", i.value("role", "?"),
                          i.value("instance", "?"));
      if (i.contains("token")) line += fmt::format(" (lease token {})", i["token"].get<int64_t>());
    }
    out += fmt::format("{} instances: {}\n", s["name"].get<std::string>(), line);
  }
  for (const auto& s : status["stages"]) {
    if (s.contains("raw_oldest_version_age_s") && !s["raw_oldest_version_age_s"].is_null()) {
      double age = s["raw_oldest_version_age_s"].get<double>();
      out += fmt::format("RAW's oldest version: {:.1f} days old ({:.0f} s)\n", age / 86400, age);
    }
  }
  const auto& f = status["freshness"];
  if (f.is_object() && f.contains("samples") && f["samples"].get<int64_t>() > 0) {
    out += fmt::format(
        "freshness (OLTP commit → API answer): p50 {:.1f} ms, p99 {:.1f} ms, last {:.1f} ms "
        "({} probes, {} missed)\n",
        f["p50_ms"].get<double>(), f["p99_ms"].get<double>(), f["last_ms"].get<double>(),
        f["samples"].get<int64_t>(), f.value("missed", int64_t{0}));
  } else {
    out += "freshness: no probe results (is the monitor running?)\n";
  }
  // The cause, which /status.json does not show (PublicStatus).
  if (f.is_object() && f.contains("last_error") && f["last_error"].is_string() &&
      !f["last_error"].get<std::string>().empty()) {
    out += fmt::format("freshness probe's last error: {}\n", f["last_error"].get<std::string>());
  }
  return out;
}

}  // namespace pdv::monitor
