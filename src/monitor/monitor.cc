// monitor::Run: the freshness probe and the status publisher.

#include "monitor/monitor.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <optional>
#include <thread>

#include "common/cpf.h"
#include "common/cpf_hasher.h"
#include "monitor/http_client.h"
#include "pg/connection.h"
#include "pg/lease.h"
#include "pg/lease_runner.h"
#include "pg/reconnect.h"
#include "redis/client.h"

namespace pdv::monitor {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kProbeTimeout = std::chrono::seconds(10);
constexpr size_t kWindow = 300;  // the percentiles cover the last 300 probes

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(std::ceil(p * static_cast<double>(v.size()))) - 1];
}

}  // namespace

std::string ProbeCpfHash(const std::string& cpf_key) {
  return CpfHasher(cpf_key).Hash(*Cpf::FromBase(kProbeCpfBase));
}

namespace {

// A marker customer (reserved CPF, origem_campanha 'pdv_probe', never touched by the
// generator) whose ticket changes at each probe; the probe times from the OLTP commit
// until the API answers with the new ticket.
class FreshnessProbe {
 public:
  FreshnessProbe(const MonitorOptions& options)
      : options_(options),
        cpf_(*Cpf::FromBase(kProbeCpfBase)),
        cpf_hash_(options.probe_cpf_hash),
        http_(options.sources.api_listen, 2000, options.sources.api_ca_cert) {}

  // Milliseconds from commit to answer; an error if the write failed or no answer came.
  Result<double> Once() {
    if (!conn_ || conn_->broken()) {
      auto c = pg::Connection::Connect(options_.sources.oltp_url);
      if (!c.ok()) return c.status();
      conn_.emplace(std::move(*c));
    }
    ++round_;
    int64_t cents = 10000 + static_cast<int64_t>(round_ % 9000);
    std::string ticket = fmt::format("{}.{:02}", cents / 100, cents % 100);
    auto w = conn_->ExecParams(
        "INSERT INTO public.clientes_clube (cliente_id, cpf_hash, nome_completo, email, telefone, "
        "data_nascimento, sexo, cidade, estado, cep, canal_cadastro, data_cadastro, "
        "ultima_atualizacao, status_clube, opt_in_marketing, ticket_medio_estimado, "
        "origem_campanha) VALUES ($1, $2, 'Sonda Frescor PDV', 'sonda-frescor@pdv.invalid', "
        "'(11) 90000-0000', '1990-01-01', 'F', 'São Paulo', 'SP', '01000-000', 'site', "
        "timezone('UTC', now()) - interval '1 day', timezone('UTC', now()), 'ATIVO', true, $3, "
        "'pdv_probe') ON CONFLICT (cliente_id) DO UPDATE SET "
        "ticket_medio_estimado = EXCLUDED.ticket_medio_estimado, "
        "ultima_atualizacao = EXCLUDED.ultima_atualizacao, status_clube = 'ATIVO'",
        {kProbeClienteId, cpf_hash_, ticket});
    if (!w.ok()) return w.status();
    auto committed = Clock::now();
    std::string path = "/v1/clientes/" + cpf_.digits();
    while (Clock::now() - committed < kProbeTimeout) {
      auto r = http_.Get(path, {{"X-API-Key", options_.api_key}});
      if (r.ok() && r->status == 200) {
        auto j = nlohmann::json::parse(r->body, nullptr, false);
        if (j.is_object() && j["ticket_medio_estimado"].is_number() &&
            std::llround(j["ticket_medio_estimado"].get<double>() * 100) == cents) {
          return std::chrono::duration<double, std::milli>(Clock::now() - committed).count();
        }
      } else if (r.ok() && r->status != 404) {
        return Status::Error(fmt::format("the API answered {}: {}", r->status, r->body));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return Status::Error(
        fmt::format("the change did not reach the API within {} s", kProbeTimeout.count()));
  }

 private:
  const MonitorOptions& options_;
  Cpf cpf_;
  std::string cpf_hash_;
  HttpClient http_;
  std::optional<pg::Connection> conn_;
  uint64_t round_ = static_cast<uint64_t>(std::time(nullptr));
};

}  // namespace

constexpr int64_t kHistoryS = 15 * 60, kHistoryStepS = 5;

Status Run(const MonitorOptions& options, Logger& log, std::stop_token stop) {
  FreshnessProbe probe(options);
  StatusSampler sampler(options.sources);
  std::deque<double> recent;
  int64_t samples = 0, missed = 0;
  double last = 0;
  std::string last_error;
  std::optional<redis::Client> publisher;  // kept between rounds, reopened when lost
  std::deque<nlohmann::json> history;      // status["history"]
  log.Info("monitor_start", {{"api", options.sources.api_listen}});
  // Active/standby: one monitor probes and publishes (two would change the probe row
  // against each other); the others wait for the "monitor" lease (pg/lease_runner.h).
  auto work = [&](pg::LeaseHold& hold) -> Status {
    std::stop_token stop = hold.stop_token();
    while (!stop.stop_requested()) {
      if (Status kept = hold.lease().Keep(); !kept.ok()) return kept;
      hold.Healthy();
      auto started = Clock::now();
      auto ms = probe.Once();
      if (ms.ok()) {
        ++samples;
        last = *ms;
        // Each probe at debug level, so a run's whole distribution can be read back (the
        // status keeps only the last kWindow).
        log.Debug("freshness_probe", {{"ms", *ms}});
        recent.push_back(*ms);
        if (recent.size() > kWindow) recent.pop_front();
        last_error.clear();
      } else {
        ++missed;
        if (ms.message() != last_error) log.Warn("probe_missed", {{"error", ms.message()}});
        last_error = ms.message();
      }
      nlohmann::json status = sampler.Next();
      // The last 15 minutes, a point every 5 s (the status page draws them): freshness, and
      // each stage's rate and lag, so a takeover shows as a dip and its recovery.
      {
        int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
        std::vector<double> current(recent.begin(), recent.end());
        nlohmann::json point = {{"t", now_s},
                                {"p50_ms", Percentile(current, 0.5)},
                                {"p99_ms", Percentile(current, 0.99)}};
        nlohmann::json stages = nlohmann::json::object();
        for (const auto& st : status["stages"]) {
          stages[st["name"].get<std::string>()] = {{"rate", st["rate"]},
                                                   {"lag_s", st["lag_seconds"]}};
        }
        point["stages"] = stages;
        if (history.empty() || now_s - history.back()["t"].get<int64_t>() >= kHistoryStepS) {
          history.push_back(point);
        } else {
          history.back() = point;  // the newest point follows the present
        }
        while (!history.empty() && now_s - history.front()["t"].get<int64_t>() > kHistoryS) {
          history.pop_front();
        }
        status["history"] = nlohmann::json(history);
      }
      std::vector<double> window(recent.begin(), recent.end());
      status["freshness"] = {{"p50_ms", Percentile(window, 0.5)},
                             {"p99_ms", Percentile(window, 0.99)},
                             {"last_ms", last},
                             {"samples", samples},
                             {"missed", missed},
                             {"window", window.size()},
                             {"last_error", last_error}};
      if (!publisher) {
        if (auto c = redis::Client::Connect(options.sources.redis_url); c.ok()) {
          publisher.emplace(std::move(*c));
        }
      }
      if (publisher) {
        std::string text = status.dump();
        if (!publisher->Command({"SET", kStatusKey, text, "EX", "15"}).ok()) publisher.reset();
      }
      auto next = started + std::chrono::milliseconds(options.interval_ms);
      if (!pg::SleepFor(std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now()),
                        stop)) {
        break;
      }
    }
    return Status::Ok();
  };
  return pg::RunUnderLease(
      {.lease = {.warehouse_url = options.sources.warehouse_url, .stage = "monitor"},
       .retry_event = "monitor_lease_retry"},
      log, stop, work);
}

}  // namespace pdv::monitor
