#include "cdc/replication_connection.h"

#include <fmt/format.h>
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "common/log.h"
#include "common/time_text.h"
#include "pg/errors.h"

namespace pdv::cdc {
namespace {

using pg::kConnectionLost;

std::string OneLine(const char* text) {
  std::string out;
  for (const char* p = text ? text : ""; *p; ++p) {
    char c = (*p == '\n' || *p == '\t') ? ' ' : *p;
    if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
    out += c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

struct ResultClear {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultClear>;

}  // namespace

pdv::Result<ReplicationConnection> ReplicationConnection::Connect(const std::string& url,
                                                                  const std::string& options) {
  const char* keys[] = {"dbname", "replication", "options", nullptr};
  const char* values[] = {url.c_str(), "database", options.empty() ? nullptr : options.c_str(),
                          nullptr};
  if (options.empty()) keys[2] = nullptr;
  ReplicationConnection conn(PQconnectdbParams(keys, values, /*expand_dbname=*/1));
  if (PQstatus(conn.conn_.get()) != CONNECTION_OK) {
    return Status::Error(fmt::format("replication: cannot connect to {}: {}", RedactUrl(url),
                                     OneLine(PQerrorMessage(conn.conn_.get()))),
                         kConnectionLost);
  }
  PQsetNoticeProcessor(
      conn.conn_.get(), [](void*, const char*) {}, nullptr);
  return conn;
}

Status ReplicationConnection::Error(std::string_view what, const PGresult* res) {
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string code = state ? state : "";
  if (PQstatus(conn_.get()) != CONNECTION_OK) code = kConnectionLost;
  std::string message = OneLine(res ? PQresultErrorMessage(res) : "");
  if (message.empty()) message = OneLine(PQerrorMessage(conn_.get()));
  return Status::Error(fmt::format("replication: {}: {}", what, message), code);
}

pdv::Result<SlotCreated> ReplicationConnection::CreateSlot(const std::string& slot,
                                                           bool temporary) {
  std::string sql =
      fmt::format("CREATE_REPLICATION_SLOT \"{}\" {}LOGICAL pgoutput (SNAPSHOT 'export')", slot,
                  temporary ? "TEMPORARY " : "");
  ResultPtr res(PQexec(conn_.get(), sql.c_str()));
  if (PQresultStatus(res.get()) != PGRES_TUPLES_OK || PQntuples(res.get()) != 1) {
    return Error("CREATE_REPLICATION_SLOT", res.get());
  }
  auto lsn = ParseLsn(PQgetvalue(res.get(), 0, 1));
  if (!lsn)
    return Status::Error("replication: CREATE_REPLICATION_SLOT returned no consistent point");
  return SlotCreated{*lsn, PQgetvalue(res.get(), 0, 2)};
}

pdv::Result<ReplicationConnection::SystemIdentity> ReplicationConnection::IdentifySystem() {
  ResultPtr res(PQexec(conn_.get(), "IDENTIFY_SYSTEM"));
  if (PQresultStatus(res.get()) != PGRES_TUPLES_OK || PQntuples(res.get()) != 1 ||
      PQnfields(res.get()) < 2) {
    return Error("IDENTIFY_SYSTEM", res.get());
  }
  return SystemIdentity{PQgetvalue(res.get(), 0, 0), std::atoi(PQgetvalue(res.get(), 0, 1))};
}

pdv::Result<std::string> ReplicationConnection::TimelineHistory(int timeline) {
  std::string sql = fmt::format("TIMELINE_HISTORY {}", timeline);
  ResultPtr res(PQexec(conn_.get(), sql.c_str()));
  if (PQresultStatus(res.get()) != PGRES_TUPLES_OK || PQntuples(res.get()) != 1 ||
      PQnfields(res.get()) < 2) {
    return Error("TIMELINE_HISTORY", res.get());
  }
  return std::string(PQgetvalue(res.get(), 0, 1), PQgetlength(res.get(), 0, 1));
}

Status ReplicationConnection::Start(const std::string& slot, Lsn start,
                                    const std::string& publication, bool streaming) {
  std::string sql = fmt::format(
      "START_REPLICATION SLOT \"{}\" LOGICAL {} (proto_version '2', publication_names '\"{}\"', "
      "streaming '{}')",
      slot, LsnText(start), publication, streaming ? "on" : "off");
  ResultPtr res(PQexec(conn_.get(), sql.c_str()));
  if (PQresultStatus(res.get()) != PGRES_COPY_BOTH) return Error("START_REPLICATION", res.get());
  return Status::Ok();
}

pdv::Result<std::optional<std::string>> ReplicationConnection::Receive(
    std::chrono::microseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    char* buf = nullptr;
    int n = PQgetCopyData(conn_.get(), &buf, /*async=*/1);
    if (n > 0) {
      std::string data(buf, static_cast<size_t>(n));
      PQfreemem(buf);
      return std::optional<std::string>(std::move(data));
    }
    if (n == -1) {
      // The server ends the stream when it shuts down or its walsender is terminated:
      // reconnecting is the answer either way.
      ResultPtr res(PQgetResult(conn_.get()));
      Status ended = Error("the server ended the replication stream", res.get());
      return Status::Error(ended.message(), kConnectionLost);
    }
    if (n == -2) return Error("replication stream", nullptr);
    auto left = std::chrono::duration_cast<std::chrono::microseconds>(
        deadline - std::chrono::steady_clock::now());
    // Even with no time left, read what the socket already holds: a zero timeout must
    // not leave the stream unread (the caller may be asking with 0 again and again).
    pollfd pfd{.fd = PQsocket(conn_.get()), .events = POLLIN, .revents = 0};
    const int64_t wait_us = std::max<int64_t>(0, left.count());
    timespec wait{.tv_sec = wait_us / 1'000'000, .tv_nsec = (wait_us % 1'000'000) * 1000};
    int ready = ::ppoll(&pfd, 1, &wait, nullptr);
    if (ready < 0 && errno != EINTR) return Error("poll", nullptr);
    if (ready > 0) {
      if (PQconsumeInput(conn_.get()) == 0) return Error("replication stream", nullptr);
      continue;
    }
    if (left.count() <= 0) return std::optional<std::string>();
  }
}

Status ReplicationConnection::SendStatus(Lsn received, Lsn flush, bool reply_requested) {
  int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count() -
                   kPostgresEpochUs;
  std::string msg = EncodeStandbyStatus(received, flush, flush, now_us, reply_requested);
  if (PQputCopyData(conn_.get(), msg.data(), static_cast<int>(msg.size())) != 1 ||
      PQflush(conn_.get()) != 0) {
    return Error("standby status update", nullptr);
  }
  return Status::Ok();
}

}  // namespace pdv::cdc
