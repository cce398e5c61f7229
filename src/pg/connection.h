#pragma once

#include <libpq-fe.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "pg/errors.h"

namespace pdv::pg {

// Owns one PGresult (PQclear on destruction). Move-only.
class Result {
 public:
  explicit Result(PGresult* res) : res_(res) {}
  int rows() const { return PQntuples(res_.get()); }
  int columns() const { return PQnfields(res_.get()); }
  bool is_null(int row, int col) const { return PQgetisnull(res_.get(), row, col); }
  // The text value; "" for NULL. Valid while this Result lives.
  std::string_view get(int row, int col) const {
    return {PQgetvalue(res_.get(), row, col),
            static_cast<size_t>(PQgetlength(res_.get(), row, col))};
  }
  std::string str(int row, int col) const { return std::string(get(row, col)); }
  // Rows affected by the command ("UPDATE 3" -> 3).
  int64_t affected() const;
  // The command's tag ("SELECT 3", "CREATE VIEW") and its row count text ("" when none).
  std::string command_status() const { return PQcmdStatus(res_.get()); }
  std::string command_tuples() const { return PQcmdTuples(res_.get()); }
  std::string column_name(int col) const { return PQfname(res_.get(), col); }
  // The column's type OID (23 int4, 1700 numeric ...).
  unsigned column_type(int col) const { return PQftype(res_.get(), col); }
  PGresult* raw() const { return res_.get(); }

 private:
  struct Clear {
    void operator()(PGresult* r) const { PQclear(r); }
  };
  std::unique_ptr<PGresult, Clear> res_;
};

// A statement's error as the server sent it, field by field.
struct SqlError {
  std::string primary;  // the message, without "ERROR:"
  std::string detail, hint;
  std::string sqlstate;  // kConnectionLost (pg/errors.h) when the connection itself is gone
  int position = 0;      // 1-based character of the statement, 0 when none
};

// Owns one libpq connection (PQfinish on destruction). Move-only, not thread-safe:
// one thread uses a connection at a time. Errors carry the server's SQLSTATE as
// Status::code(), or kConnectionLost when the connection itself is gone (pg/errors.h).
class Connection {
 public:
  // Connects with libpq; `url` is a libpq URL or key=value string. The error names the
  // server (password masked) and libpq's reason.
  static pdv::Result<Connection> Connect(const std::string& url);

  pdv::Result<Result> Exec(std::string_view sql);
  // The same, and on failure the error's fields in *error.
  pdv::Result<Result> Exec(std::string_view sql, SqlError* error);
  // Text parameters; std::nullopt is SQL NULL.
  pdv::Result<Result> ExecParams(std::string_view sql,
                                 const std::vector<std::optional<std::string>>& params);

  // The same through a statement prepared on this connection the first time `sql` is
  // run: parsed and planned once, for statements a loop runs again and again (catalog
  // lookups of transform watch, run every few milliseconds).
  pdv::Result<Result> ExecPrepared(std::string_view sql,
                                   const std::vector<std::optional<std::string>>& params);

  // COPY ... FROM STDIN: Begin, Put as many chunks as wanted, End (or Abort).
  Status CopyBegin(std::string_view copy_sql);
  Status CopyPut(std::string_view data);
  Status CopyEnd();

  // COPY ... TO STDOUT: calls `row` with each row's data (text format: one line, with
  // its newline). Stops at the first error `row` returns.
  Status CopyOut(std::string_view copy_sql, const std::function<Status(std::string_view)>& row);

  // A SQL string literal of `text` ('...'), escaped for this connection.
  std::string Literal(std::string_view text);
  // A quoted SQL identifier ("..."), escaped for this connection.
  std::string Identifier(std::string_view name);

  int backend_pid() const { return PQbackendPID(conn_.get()); }
  bool broken() const { return PQstatus(conn_.get()) != CONNECTION_OK; }
  PGconn* raw() const { return conn_.get(); }

 private:
  struct Finish {
    void operator()(PGconn* c) const { PQfinish(c); }
  };
  explicit Connection(PGconn* conn) : conn_(conn) {}
  Status ErrorFrom(const PGresult* res, std::string_view what);
  std::unique_ptr<PGconn, Finish> conn_;
  // SQL -> statement name (on the heap: GCC 12 misreads a map moved out of a Result).
  std::unique_ptr<std::map<std::string, std::string, std::less<>>> prepared_;
  uint64_t prepared_count_ = 0;
};

// A quoted SQL identifier ("a ""b"""), for SQL built without a connection at hand; the
// same as Connection::Identifier for UTF-8 servers. Pure.
std::string QuoteIdentifier(std::string_view name);

// Rolls back on destruction unless Commit() succeeded.
class Transaction {
 public:
  static pdv::Result<Transaction> Begin(Connection& conn, std::string_view begin_sql = "BEGIN");
  Transaction(Transaction&& other) noexcept : conn_(other.conn_) { other.conn_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  Status Commit() { return Commit("COMMIT"); }
  // `commit_sql` ends with the COMMIT (a fence check and the commit in one round trip:
  // pg/lease.h); a transaction already failed, or rolled back by it, is an error.
  Status Commit(std::string_view commit_sql);

 private:
  explicit Transaction(Connection* conn) : conn_(conn) {}
  Connection* conn_;
};

}  // namespace pdv::pg
