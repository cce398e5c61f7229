#include "pg/lease.h"

#include <fmt/format.h>
#include <unistd.h>

#include "pg/errors.h"
#include "pg/reconnect.h"

namespace pdv::pg {
namespace {

using Clock = std::chrono::steady_clock;

std::string Interval(std::chrono::milliseconds d) { return fmt::format("{} ms", d.count()); }

// A connection for the lease alone: never blocked behind the stage's own transactions,
// and never waiting long for a row lock (a holder's fenced commit holds the row only
// for its own COMMIT).
pdv::Result<Connection> Open(const std::string& url, std::chrono::milliseconds ttl) {
  // A warehouse that stops answering (a cut link) fails a call within the TTL instead of
  // after TCP's retransmissions (minutes): the holder must know it can no longer renew.
  std::string params = fmt::format(
      "connect_timeout={} tcp_user_timeout={} keepalives=1 keepalives_idle=1 "
      "keepalives_interval=1 keepalives_count=2",
      std::max<int64_t>(2, ttl.count() / 1000), ttl.count());
  std::string conninfo = url;
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) {
    std::string query = params;
    for (char& c : query) c = c == ' ' ? '&' : c;
    conninfo += (url.find('?') == std::string::npos ? "?" : "&") + query;
  } else {
    conninfo += " " + params;
  }
  auto conn = Connection::Connect(conninfo);
  if (!conn.ok()) return conn.status();
  if (auto r = conn->Exec("SET lock_timeout = '1s'; SET statement_timeout = '2s'"); !r.ok()) {
    return r.status();
  }
  return conn;
}

Status Seen(Connection& conn, const LeaseOptions& o, const char* role) {
  return conn
      .ExecParams(
          "INSERT INTO platform.stage_instances (stage, instance, role, seen_at) VALUES ($1, $2, "
          "$3, now()) ON CONFLICT (stage, instance) DO UPDATE SET role = EXCLUDED.role, "
          "seen_at = now()",
          {o.stage, o.instance, std::string(role)})
      .status();
}

}  // namespace

bool IsLeaseLost(const Status& s) { return s.code() == kLeaseLost; }

Status EnsureLeaseSchema(Connection& conn) {
  auto present = conn.Exec(
      "SELECT to_regclass('platform.stage_leases') IS NOT NULL AND "
      "to_regclass('platform.stage_instances') IS NOT NULL AND EXISTS (SELECT FROM pg_proc p "
      "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'platform' AND "
      "p.proname = 'pdv_fence')");
  if (!present.ok()) return present.status();
  if (present->get(0, 0) == "t") return Status::Ok();
  // One query, one transaction: the advisory lock is held to its end (the warehouse's
  // schema takes the same lock).
  return conn
      .Exec(
          std::string(
              "SELECT pg_advisory_xact_lock(hashtext('pdv warehouse schema')); "
              "CREATE SCHEMA IF NOT EXISTS platform; "
              // Each stage's lease and fencing token, and the instances seen (the active one
              // and its standbys).
              "CREATE TABLE IF NOT EXISTS platform.stage_leases (stage text PRIMARY KEY, holder "
              "text NOT NULL, token bigint NOT NULL, expires_at timestamptz NOT NULL, renewed_at "
              "timestamptz NOT NULL); "
              "CREATE TABLE IF NOT EXISTS platform.stage_instances (stage text NOT NULL, instance "
              "text NOT NULL, role text NOT NULL, seen_at timestamptz NOT NULL, PRIMARY KEY "
              "(stage, "
              "instance)); "
              // Run in a holder's write transaction right before COMMIT: the share lock makes a
              // takeover wait for this commit, and a takeover already done fails it.
              "CREATE OR REPLACE FUNCTION platform.pdv_fence(p_stage text, p_token bigint) RETURNS "
              "void LANGUAGE plpgsql AS $f$ BEGIN PERFORM 1 FROM platform.stage_leases WHERE stage "
              "= p_stage AND token = p_token FOR SHARE; IF NOT FOUND THEN RAISE EXCEPTION '") +
          kFencedMessage +  // what pg::IsFenced recognises
          ": the % lease has a newer holder than token %', p_stage, p_token USING ERRCODE = "
          "'P0001'; END IF; END $f$")
      .status();
}

std::string DefaultInstanceName() {
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  return fmt::format("{}:{}", host, ::getpid());
}

pdv::Result<std::unique_ptr<Lease>> Lease::Acquire(const LeaseOptions& given, Logger& log,
                                                   std::stop_token stop) {
  LeaseOptions options = given;
  if (options.instance.empty()) options.instance = DefaultInstanceName();
  bool said_standby = false;
  std::optional<Connection> conn;
  while (!stop.stop_requested()) {
    if (!conn) {
      auto opened = Open(options.warehouse_url, options.ttl);
      if (!opened.ok()) return opened.status();
      conn.emplace(std::move(*opened));
      // Every stage makes the lease's tables before it asks for the lease.
      if (Status s = EnsureLeaseSchema(*conn); !s.ok()) return s;
    }
    auto sent = Clock::now();
    // A new holder when the lease is free or expired (by the warehouse's clock), with
    // the next token; the same instance coming back also gets a new token.
    auto r = conn->ExecParams(
        "INSERT INTO platform.stage_leases AS l (stage, holder, token, expires_at, renewed_at) "
        "VALUES ($1, $2, 1, now() + $3::interval, now()) ON CONFLICT (stage) DO UPDATE SET "
        "holder = EXCLUDED.holder, token = l.token + 1, expires_at = EXCLUDED.expires_at, "
        "renewed_at = now() WHERE l.expires_at < now() OR l.holder = EXCLUDED.holder "
        "RETURNING token",
        {options.stage, options.instance, Interval(options.ttl)});
    if (!r.ok()) {
      if (IsConnectionLost(r.status())) return r.status();
      // A lock timeout behind a holder's commit: try again.
      log.Warn(options.stage + "_lease_retry", {{"error", r.message()}});
    } else if (r->rows() == 1) {
      std::unique_ptr<Lease> lease(new Lease(options, std::move(*conn), std::stoll(r->str(0, 0))));
      lease->renewed_sent_ = sent;
      (void)Seen(*lease->conn_, options, "active");
      log.Info(options.stage + "_active",
               {{"instance", options.instance}, {"lease_token", lease->token_}});
      lease->renewer_ =
          std::jthread([l = lease.get()](std::stop_token st) { l->KeepRenewing(st); });
      return lease;
    } else {
      if (!said_standby) {
        auto holder = conn->ExecParams(
            "SELECT holder, token FROM platform.stage_leases WHERE stage = $1", {options.stage});
        log.Info(options.stage + "_standby",
                 {{"instance", options.instance},
                  {"active", holder.ok() && holder->rows() ? holder->str(0, 0) : "?"}});
        said_standby = true;
      }
      (void)Seen(*conn, options, "standby");
    }
    if (!SleepFor(options.poll, stop)) break;
  }
  return std::unique_ptr<Lease>();
}

Lease::Lease(LeaseOptions options, Connection conn, int64_t token)
    : options_(std::move(options)), token_(token), conn_(std::move(conn)) {}

Lease::~Lease() {
  renewer_ = {};  // stop and join the renewing thread
  if (conn_ && !released_) {
    // Not released (an error): the row stays until it expires; this instance is gone.
    (void)conn_->ExecParams(
        "DELETE FROM platform.stage_instances WHERE stage = $1 AND instance = $2",
        {options_.stage, options_.instance});
  }
}

Status Lease::Renew() {
  if (!conn_) {
    auto opened = Open(options_.warehouse_url, options_.ttl);
    if (!opened.ok()) return opened.status();
    conn_.emplace(std::move(*opened));
  }
  auto sent = Clock::now();
  auto r = conn_->ExecParams(
      "UPDATE platform.stage_leases SET expires_at = now() + $3::interval, renewed_at = now() "
      "WHERE stage = $1 AND holder = $2 AND token = $4",
      {options_.stage, options_.instance, Interval(options_.ttl), std::to_string(token_)});
  if (!r.ok()) {
    if (IsConnectionLost(r.status())) conn_.reset();
    return r.status();
  }
  if (std::string_view(PQcmdTuples(r->raw())) != "1") {
    return Status::Error(
        fmt::format("{}: the lease (token {}) has a newer holder", options_.stage, token_),
        kLeaseLost);
  }
  {
    std::lock_guard lock(mu_);
    renewed_sent_ = sent;
  }
  (void)Seen(*conn_, options_, "active");
  return Status::Ok();
}

void Lease::MarkLost(Status why) {
  if (lost_.ok()) lost_ = std::move(why);
  lost_signal_.request_stop();
}

void Lease::KeepRenewing(std::stop_token stop) {
  while (!stop.stop_requested()) {
    if (!SleepFor(options_.ttl / 3, stop)) return;
    Status s = Renew();
    std::lock_guard lock(mu_);
    if (IsLeaseLost(s)) {
      MarkLost(s);
      return;
    }
    // Renewals failing (the warehouse unreachable) for a TTL: as lost as Keep() says.
    if (!s.ok() && Clock::now() - renewed_sent_ >= options_.ttl) {
      MarkLost(Status::Error(
          fmt::format("{}: no lease renewal for {} ms", options_.stage, options_.ttl.count()),
          kLeaseLost));
      return;
    }
  }
}

Status Lease::Keep() {
  std::lock_guard lock(mu_);
  if (released_) return Status::Error(options_.stage + ": the lease was released", kLeaseLost);
  if (!lost_.ok()) return lost_;
  // Renewals failing (the warehouse unreachable): still ours until a TTL after the last
  // successful renewal was sent (the warehouse counts from when it received it, later).
  if (Clock::now() - renewed_sent_ >= options_.ttl) {
    MarkLost(Status::Error(
        fmt::format("{}: no lease renewal for {} ms", options_.stage, options_.ttl.count()),
        kLeaseLost));
    return lost_;
  }
  return Status::Ok();
}

void Lease::Release() {
  renewer_ = {};  // no renewal after this
  std::lock_guard lock(mu_);
  if (released_ || !conn_) return;
  released_ = true;
  (void)conn_->ExecParams(
      "UPDATE platform.stage_leases SET expires_at = now() - interval '1 ms' WHERE stage = $1 AND "
      "holder = $2 AND token = $3",
      {options_.stage, options_.instance, std::to_string(token_)});
  (void)conn_->ExecParams("DELETE FROM platform.stage_instances WHERE stage = $1 AND instance = $2",
                          {options_.stage, options_.instance});
}

std::string Lease::FenceSql() const {
  return fmt::format("SELECT platform.pdv_fence('{}', {})", options_.stage, token_);
}

}  // namespace pdv::pg
