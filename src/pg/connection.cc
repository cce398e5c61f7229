#include "pg/connection.h"

#include <fmt/format.h>

#include <cstdlib>

#include "common/log.h"

namespace pdv::pg {
namespace {

// libpq's messages span lines ("...\n\tIs the server running..."): make them one line.
std::string Trimmed(const char* text) {
  std::string out;
  bool space = false;
  for (const char* p = text ? text : ""; *p; ++p) {
    bool ws = *p == '\n' || *p == '\t' || *p == ' ' || *p == '\r';
    if (ws) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += *p;
  }
  return out;
}

// A statement as named in errors: its start, on one line.
std::string Brief(std::string_view sql) {
  std::string s = Trimmed(std::string(sql.substr(0, 200)).c_str());
  if (s.size() > 60) s = s.substr(0, 60) + "...";
  return "\"" + s + "\"";
}

}  // namespace

int64_t Result::affected() const {
  const char* n = PQcmdTuples(res_.get());
  return (n && *n) ? std::strtoll(n, nullptr, 10) : 0;
}

pdv::Result<Connection> Connection::Connect(const std::string& url) {
  // This side gives up on a server it cannot reach the same way (keepalives after 2 s
  // idle, unacknowledged data for 4 s): a call waiting for a reply across a cut link
  // fails instead of waiting forever. Settings in `url` win (they come after).
  const char* keys[] = {"keepalives",
                        "keepalives_idle",
                        "keepalives_interval",
                        "keepalives_count",
                        "tcp_user_timeout",
                        "dbname",
                        nullptr};
  const char* values[] = {"1", "2", "1", "2", "4000", url.c_str(), nullptr};
  PGconn* raw = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  Connection conn(raw);
  if (raw == nullptr) return Status::Error("postgres: out of memory", kConnectionLost);
  if (PQstatus(raw) != CONNECTION_OK) {
    return Status::Error(fmt::format("postgres: cannot connect to {}: {}", RedactUrl(url),
                                     Trimmed(PQerrorMessage(raw))),
                         kConnectionLost);
  }
  // Server notices ("relation already exists, skipping") are not errors; libpq's default
  // prints them raw on stderr, between our structured log lines.
  PQsetNoticeProcessor(
      raw, [](void*, const char*) {}, nullptr);
  // Timestamps cross stage boundaries in UTC (ARCHITECTURE.md). The server ends this
  // session within about 4 s of this client vanishing (a cut link, a host gone): probes
  // after 2 s idle, or unacknowledged data for 4 s. Otherwise a cut-off stage's backend
  // lives on for minutes, its open transaction holding locks that a new leader, and
  // everyone queued behind it, would wait for. Ignored on a Unix socket.
  if (auto r = conn.Exec(
          "SET TIME ZONE 'UTC'; SET tcp_keepalives_idle = 2; SET tcp_keepalives_interval = 1; "
          "SET tcp_keepalives_count = 2; SET tcp_user_timeout = 4000");
      !r.ok()) {
    return r.status();
  }
  return conn;
}

Status Connection::ErrorFrom(const PGresult* res, std::string_view what) {
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string code = state ? state : "";
  if (PQstatus(conn_.get()) != CONNECTION_OK) code = kConnectionLost;
  std::string message = res ? Trimmed(PQresultErrorMessage(res)) : "";
  if (message.empty()) message = Trimmed(PQerrorMessage(conn_.get()));
  return Status::Error(fmt::format("postgres: {}: {}", what, message), code);
}

pdv::Result<Result> Connection::Exec(std::string_view sql) {
  std::string text(sql);
  Result res(PQexec(conn_.get(), text.c_str()));
  auto st = PQresultStatus(res.raw());
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return res;
  return ErrorFrom(res.raw(), Brief(text));
}

pdv::Result<Result> Connection::Exec(std::string_view sql, SqlError* error) {
  std::string text(sql);
  Result res(PQexec(conn_.get(), text.c_str()));
  auto st = PQresultStatus(res.raw());
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return res;
  const PGresult* r = res.raw();
  auto field = [&](int code) -> std::string {
    const char* v = r ? PQresultErrorField(r, code) : nullptr;
    return v ? v : "";
  };
  *error = SqlError{.primary = field(PG_DIAG_MESSAGE_PRIMARY),
                    .detail = field(PG_DIAG_MESSAGE_DETAIL),
                    .hint = field(PG_DIAG_MESSAGE_HINT),
                    .sqlstate = field(PG_DIAG_SQLSTATE)};
  std::string position = field(PG_DIAG_STATEMENT_POSITION);
  if (!position.empty()) error->position = std::atoi(position.c_str());
  if (error->primary.empty()) error->primary = Trimmed(PQerrorMessage(conn_.get()));
  if (PQstatus(conn_.get()) != CONNECTION_OK) error->sqlstate = kConnectionLost;
  return ErrorFrom(r, Brief(text));
}

pdv::Result<Result> Connection::ExecParams(std::string_view sql,
                                           const std::vector<std::optional<std::string>>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  std::string text(sql);
  Result res(PQexecParams(conn_.get(), text.c_str(), static_cast<int>(values.size()), nullptr,
                          values.data(), nullptr, nullptr, 0));
  auto st = PQresultStatus(res.raw());
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return res;
  return ErrorFrom(res.raw(), Brief(text));
}

pdv::Result<Result> Connection::ExecPrepared(
    std::string_view sql, const std::vector<std::optional<std::string>>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  if (!prepared_) prepared_ = std::make_unique<std::map<std::string, std::string, std::less<>>>();
  auto& prepared = *prepared_;
  for (int attempt = 0;; ++attempt) {
    auto it = prepared.find(sql);
    if (it == prepared.end()) {
      // Numbered by all ever prepared: a name freed by the retry below is not reused.
      std::string name = fmt::format("pdv_prepared_{}", ++prepared_count_);
      std::string text(sql);
      Result made(PQprepare(conn_.get(), name.c_str(), text.c_str(), 0, nullptr));
      if (PQresultStatus(made.raw()) != PGRES_COMMAND_OK) return ErrorFrom(made.raw(), Brief(text));
      it = prepared.emplace(std::move(text), std::move(name)).first;
    }
    Result res(PQexecPrepared(conn_.get(), it->second.c_str(), static_cast<int>(values.size()),
                              values.data(), nullptr, nullptr, 0));
    auto st = PQresultStatus(res.raw());
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return res;
    // Gone from the session (DEALLOCATE or DISCARD ALL in some hook): prepared again, once.
    const char* state = PQresultErrorField(res.raw(), PG_DIAG_SQLSTATE);
    if (attempt == 0 && state && std::string_view(state) == "26000") {
      prepared.erase(it);
      continue;
    }
    return ErrorFrom(res.raw(), Brief(it->first));
  }
}

Status Connection::CopyBegin(std::string_view copy_sql) {
  std::string text(copy_sql);
  Result res(PQexec(conn_.get(), text.c_str()));
  if (PQresultStatus(res.raw()) != PGRES_COPY_IN) return ErrorFrom(res.raw(), Brief(text));
  return Status::Ok();
}

Status Connection::CopyPut(std::string_view data) {
  if (PQputCopyData(conn_.get(), data.data(), static_cast<int>(data.size())) != 1) {
    return ErrorFrom(nullptr, "COPY data");
  }
  return Status::Ok();
}

Status Connection::CopyEnd() {
  if (PQputCopyEnd(conn_.get(), nullptr) != 1) return ErrorFrom(nullptr, "COPY end");
  Status status;
  while (PGresult* raw = PQgetResult(conn_.get())) {
    Result res(raw);
    if (PQresultStatus(raw) != PGRES_COMMAND_OK && status.ok()) status = ErrorFrom(raw, "COPY");
  }
  return status;
}

Status Connection::CopyOut(std::string_view copy_sql,
                           const std::function<Status(std::string_view)>& row) {
  std::string text(copy_sql);
  Result res(PQexec(conn_.get(), text.c_str()));
  if (PQresultStatus(res.raw()) != PGRES_COPY_OUT) return ErrorFrom(res.raw(), Brief(text));
  Status status;
  while (true) {
    char* buf = nullptr;
    int n = PQgetCopyData(conn_.get(), &buf, 0);
    if (n < 0) break;
    if (status.ok()) status = row(std::string_view(buf, static_cast<size_t>(n)));
    PQfreemem(buf);
  }
  while (PGresult* raw = PQgetResult(conn_.get())) {
    Result done(raw);
    if (PQresultStatus(raw) != PGRES_COMMAND_OK && status.ok())
      status = ErrorFrom(raw, Brief(text));
  }
  return status;
}

std::string Connection::Literal(std::string_view text) {
  char* quoted = PQescapeLiteral(conn_.get(), text.data(), text.size());
  if (quoted == nullptr) {
    // Only on invalid encoding or no memory; never produce unescaped SQL.
    std::string safe = "''";
    return safe;
  }
  std::string out(quoted);
  PQfreemem(quoted);
  return out;
}

std::string Connection::Identifier(std::string_view name) {
  char* quoted = PQescapeIdentifier(conn_.get(), name.data(), name.size());
  if (quoted == nullptr) return "\"\"";
  std::string out(quoted);
  PQfreemem(quoted);
  return out;
}

pdv::Result<Transaction> Transaction::Begin(Connection& conn, std::string_view begin_sql) {
  if (auto r = conn.Exec(begin_sql); !r.ok()) return r.status();
  return Transaction(&conn);
}

Transaction::~Transaction() {
  if (conn_ != nullptr && !conn_->broken()) (void)conn_->Exec("ROLLBACK");
}

Status Transaction::Commit(std::string_view commit_sql) {
  Connection* conn = conn_;
  conn_ = nullptr;
  auto r = conn->Exec(commit_sql);
  if (!r.ok() && !conn->broken()) (void)conn->Exec("ROLLBACK");  // the fence failed first
  if (!r.ok()) return r.status();
  // COMMIT of a transaction that already failed answers "ROLLBACK", not an error.
  if (std::string_view(PQcmdStatus(r->raw())) == "ROLLBACK") {
    return Status::Error("postgres: COMMIT: the transaction was rolled back");
  }
  return Status::Ok();
}

std::string QuoteIdentifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace pdv::pg
