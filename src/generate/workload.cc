#include "generate/workload.h"

#include <fmt/format.h>

#include <chrono>
#include <vector>

#include "generate/customer_generator.h"
#include "generate/oltp_schema.h"
#include "pg/reconnect.h"

namespace pdv::generate {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kIdPoolLimit = 200'000;
constexpr int kMaxConsecutiveFailures = 10;
constexpr char kNowUtc[] = "timezone('UTC', now())";

enum class OpKind { kInsert, kStatus, kOptIn, kTicket, kMove, kDelete };

struct PendingTxn {
  std::string sql;
  std::vector<std::string> inserted_ids;
  std::vector<std::string> inserted_cpfs;
  std::vector<std::string> deleted_ids;
  uint64_t inserts = 0, updates = 0, deletes = 0;
  size_t size = 0;
};

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class Workload {
 public:
  Workload(const ReferenceData& data, const WorkloadOptions& options, Logger& log)
      : data_(data),
        options_(options),
        log_(log),
        gen_(data, options.seed, options.cpf_key),
        rng_(Rng::For(options.seed, 0x776f726b6c6f6164ull)) {}

  pdv::Result<WorkloadStats> Run(std::stop_token stop) {
    auto retry = milliseconds(static_cast<int64_t>(options_.retry_timeout_s * 1000));
    auto conn = pg::ConnectWithRetry(options_.oltp_url, log_, retry, stop);
    if (!conn.ok()) return conn.status();
    conn_.emplace(std::move(*conn));
    if (Status s = LoadIds(); !s.ok()) return s;

    auto start = Clock::now();
    auto deadline = options_.duration_s > 0
                        ? start + milliseconds(static_cast<int64_t>(options_.duration_s * 1000))
                        : Clock::time_point::max();
    auto next_at = start;
    auto last_report = start;
    uint64_t reported_ops = 0;
    int consecutive_failures = 0;
    log_.Info("workload_start", {{"rate", options_.rate},
                                 {"duration_s", options_.duration_s},
                                 {"known_customers", static_cast<uint64_t>(ids_.size())}});
    while (!stop.stop_requested() && Clock::now() < deadline) {
      auto now = Clock::now();
      if (next_at > now) {
        auto wait = std::min(next_at, deadline) - now;
        if (!pg::SleepFor(std::chrono::duration_cast<milliseconds>(wait) + milliseconds(1), stop)) {
          break;
        }
        if (Clock::now() >= deadline) break;
      } else if (now - next_at > std::chrono::seconds(1)) {
        next_at = now;  // fell behind (slow server, reconnect): don't burst to catch up
      }
      PendingTxn txn;
      if (Status s = Build(&txn); !s.ok()) {
        if (!pg::IsConnectionLost(s)) return s;
        if (Status r = Reconnect(s, stop); !r.ok()) return r;
        continue;
      }
      next_at += std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(static_cast<double>(txn.size) / options_.rate));

      Status done = Execute(txn, stop);
      if (!done.ok()) {
        if (pg::IsConnectionLost(done)) return done;  // retries exhausted or stopped
        ++stats_.failed_transactions;
        log_.Error("transaction_failed",
                   {{"error", done.message()}, {"operations", static_cast<uint64_t>(txn.size)}});
        if (++consecutive_failures >= kMaxConsecutiveFailures) {
          return Status::Error(
              fmt::format("workload: {} transactions in a row were rejected; last error: {}",
                          consecutive_failures, done.message()));
        }
        continue;
      }
      consecutive_failures = 0;
      Apply(txn);

      if (Clock::now() - last_report >= std::chrono::seconds(10)) {
        uint64_t ops = stats_.inserts + stats_.updates + stats_.deletes;
        double secs = std::chrono::duration<double>(Clock::now() - last_report).count();
        log_.Info("workload_progress", {{"ops_per_s", (ops - reported_ops) / secs},
                                        {"transactions", stats_.transactions},
                                        {"inserts", stats_.inserts},
                                        {"updates", stats_.updates},
                                        {"deletes", stats_.deletes},
                                        {"reconnects", stats_.reconnects}});
        last_report = Clock::now();
        reported_ops = ops;
      }
    }
    log_.Info("workload_stop", {{"transactions", stats_.transactions},
                                {"inserts", stats_.inserts},
                                {"updates", stats_.updates},
                                {"deletes", stats_.deletes},
                                {"reconnects", stats_.reconnects},
                                {"failed_transactions", stats_.failed_transactions}});
    return stats_;
  }

 private:
  Status LoadIds() {
    auto r =
        conn_->Exec(fmt::format("SELECT cliente_id::text FROM public.clientes_clube "
                                "WHERE origem_campanha IS DISTINCT FROM 'pdv_probe' LIMIT {}",
                                kIdPoolLimit));
    if (!r.ok()) return r.status();
    ids_.clear();
    for (int i = 0; i < r->rows(); ++i) ids_.push_back(r->str(i, 0));
    return Status::Ok();
  }

  OpKind PickKind() {
    if (ids_.empty()) return OpKind::kInsert;
    double u = rng_.Unit();
    if (u < options_.delete_share) return OpKind::kDelete;
    u = (u - options_.delete_share) / (1.0 - options_.delete_share);
    if (u < 0.35) return OpKind::kInsert;
    if (u < 0.55) return OpKind::kStatus;
    if (u < 0.70) return OpKind::kOptIn;
    if (u < 0.87) return OpKind::kTicket;
    return OpKind::kMove;
  }

  pdv::Result<uint64_t> NextSerial() {
    while (true) {
      if (serial_next_ == serial_end_) {
        auto first = ReserveSerials(*conn_, 256);
        if (!first.ok()) return first.status();
        serial_next_ = *first;
        serial_end_ = *first + 256;
      }
      uint64_t s = serial_next_++;
      if (CustomerGenerator::CpfFor(s)) return s;
    }
  }

  Status Build(PendingTxn* txn) {
    static constexpr int kSizes[] = {1, 1, 1, 1, 2, 2, 3, 5, 5, 10, 10, 20};
    txn->size = static_cast<size_t>(kSizes[rng_.Below(std::size(kSizes))]);
    for (size_t i = 0; i < txn->size; ++i) {
      OpKind kind = PickKind();
      if (kind == OpKind::kInsert) {
        auto serial = NextSerial();
        if (!serial.ok()) return serial.status();
        auto c = gen_.Make(*serial, NowUs(), true);
        txn->sql += InsertSql(*c);
        txn->inserted_ids.push_back(UuidText(c->cliente_id));
        txn->inserted_cpfs.push_back(c->cpf.digits());
        ++txn->inserts;
        continue;
      }
      size_t at = rng_.Below(ids_.size());
      std::string id = conn_->Literal(ids_[at]);
      std::string set;
      switch (kind) {
        case OpKind::kStatus:
          set = "status_clube = CASE status_clube WHEN 'ATIVO' THEN 'INATIVO' ELSE 'ATIVO' END";
          break;
        case OpKind::kOptIn:
          set = "opt_in_marketing = NOT opt_in_marketing";
          break;
        case OpKind::kTicket:
          set = fmt::format("ticket_medio_estimado = {}", CentsText(gen_.TicketCents(rng_)));
          break;
        case OpKind::kMove: {
          const City& city = gen_.PickCity(rng_);
          set = fmt::format("cidade = {}, estado = {}, cep = {}, telefone = {}",
                            conn_->Literal(city.name), conn_->Literal(city.uf),
                            conn_->Literal(gen_.Cep(rng_, city)),
                            conn_->Literal(gen_.Phone(rng_, city.ddd)));
          break;
        }
        case OpKind::kDelete:
          txn->sql += fmt::format("DELETE FROM public.clientes_clube WHERE cliente_id = {};", id);
          txn->deleted_ids.push_back(ids_[at]);
          // Out of the pool now, so the same transaction never touches it again.
          ids_[at] = ids_.back();
          ids_.pop_back();
          ++txn->deletes;
          continue;
        case OpKind::kInsert:
          break;
      }
      txn->sql += fmt::format(
          "UPDATE public.clientes_clube SET {}, ultima_atualizacao = {} WHERE cliente_id = {};",
          set, kNowUtc, id);
      ++txn->updates;
    }
    return Status::Ok();
  }

  std::string InsertSql(const Customer& c) {
    return fmt::format(
        "INSERT INTO public.clientes_clube (cliente_id, cpf_hash, nome_completo, email, "
        "telefone, data_nascimento, sexo, cidade, estado, cep, canal_cadastro, data_cadastro, "
        "ultima_atualizacao, status_clube, opt_in_marketing, ticket_medio_estimado, "
        "origem_campanha) VALUES ('{}', '{}', {}, {}, {}, '{}', '{}', {}, {}, '{}', '{}', '{}', "
        "'{}', '{}', {}, {}, {});",
        UuidText(c.cliente_id), c.cpf_hash, conn_->Literal(c.nome_completo),
        conn_->Literal(c.email), conn_->Literal(c.telefone), DateText(c.data_nascimento), c.sexo,
        conn_->Literal(c.cidade), conn_->Literal(c.estado), c.cep, c.canal_cadastro,
        TimestampText(c.data_cadastro_us), TimestampText(c.ultima_atualizacao_us), c.status_clube,
        c.opt_in_marketing ? "true" : "false", CentsText(c.ticket_medio_centavos),
        conn_->Literal(c.origem_campanha));
  }

  // One round trip: a multi-statement query runs as one implicit transaction, rolled
  // back whole on any error.
  Status Execute(const PendingTxn& txn, std::stop_token stop) {
    bool in_doubt = false;
    while (true) {
      auto r = conn_->Exec(txn.sql);
      if (r.ok()) return Status::Ok();
      Status error = r.status();
      if (!pg::IsConnectionLost(error)) {
        if (in_doubt && error.code() == "23505") {
          // The first attempt committed before the connection dropped.
          log_.Warn("transaction_in_doubt_committed",
                    {{"operations", static_cast<uint64_t>(txn.size)}});
          return Status::Ok();
        }
        return error;
      }
      in_doubt = true;
      if (Status s = Reconnect(error, stop); !s.ok()) return s;
    }
  }

  Status Reconnect(const Status& cause, std::stop_token stop) {
    ++stats_.reconnects;
    log_.Warn("db_connection_lost", {{"error", cause.message()}});
    auto retry = milliseconds(static_cast<int64_t>(options_.retry_timeout_s * 1000));
    auto conn = pg::ConnectWithRetry(options_.oltp_url, log_, retry, stop);
    if (!conn.ok()) return conn.status();
    conn_.emplace(std::move(*conn));
    return Status::Ok();
  }

  void Apply(const PendingTxn& txn) {
    ++stats_.transactions;
    stats_.inserts += txn.inserts;
    stats_.updates += txn.updates;
    stats_.deletes += txn.deletes;
    for (const auto& id : txn.inserted_ids) {
      if (ids_.size() < kIdPoolLimit) ids_.push_back(id);
    }
    if (options_.on_signup) {
      for (const auto& cpf : txn.inserted_cpfs) options_.on_signup(cpf);
    }
  }

  const ReferenceData& data_;
  const WorkloadOptions& options_;
  Logger& log_;
  CustomerGenerator gen_;
  Rng rng_;
  std::optional<pg::Connection> conn_;
  std::vector<std::string> ids_;
  uint64_t serial_next_ = 0, serial_end_ = 0;
  WorkloadStats stats_;
};

}  // namespace

pdv::Result<WorkloadStats> RunWorkload(const ReferenceData& data, const WorkloadOptions& options,
                                       Logger& log, std::stop_token stop) {
  if (options.rate <= 0) return Status::Error("workload: rate must be above 0");
  Workload workload(data, options, log);
  return workload.Run(stop);
}

}  // namespace pdv::generate
