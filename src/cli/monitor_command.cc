// pdv status, pdv monitor: the pipeline's state and freshness.

#include <fmt/format.h>

#include <fstream>

#include "cli/command.h"
#include "monitor/monitor.h"

namespace pdv::cli {
namespace {

monitor::Sources SourcesFrom(const Config& config) {
  return {.oltp_url = *config.Get("oltp_url"),
          .warehouse_url = *config.Get("warehouse_url"),
          .redis_url = *config.Get("redis_url"),
          .api_listen = *config.Get("listen"),
          .api_ca_cert = config.Get("monitor.api_ca_cert").value_or(""),
          .slot = *config.Get("cdc.slot")};
}

// The API's protective limits as this configuration sets them (the defaults unless
// changed): what `pdv serve` started from the same configuration enforces, and says in
// its serve_listening line.
nlohmann::json ApiLimits(const Config& config) {
  return {
      {"rate_per_key", config.GetDouble("api.rate_per_key")},
      {"daily_quota_per_key", config.GetInt("api.daily_quota_per_key")},
      {"rate_per_ip", config.GetDouble("api.rate_per_ip")},
      {"max_connections", config.GetInt("api.max_connections")},
      {"max_connections_per_ip", config.GetInt("api.max_connections_per_ip")},
      {"enumeration_ratio", config.GetDouble("api.enumeration_ratio")},
      {"enumeration_min_lookups", config.GetInt("api.enumeration_min_lookups")},
      {"enumeration_window_s", config.GetInt("api.enumeration_window_s")},
      {"enumeration_action", *config.Get("api.enumeration_suspend") == "on" ? "suspend" : "log"},
      {"read_timeout_s", config.GetInt("api.read_timeout_s")},
      {"idle_timeout_s", config.GetInt("api.idle_timeout_s")}};
}

std::string FormatApiLimits(const nlohmann::json& l) {
  auto per_second = [](double v) { return v > 0 ? fmt::format("{:g}/s", v) : std::string("off"); };
  auto count = [](int64_t v) { return v > 0 ? std::to_string(v) : std::string("off"); };
  std::string enumeration =
      l["enumeration_ratio"].get<double>() > 0
          ? fmt::format(
                "over {:g}% 404s of at least {} lookups in {} s: {}",
                l["enumeration_ratio"].get<double>() * 100,
                l["enumeration_min_lookups"].get<int64_t>(),
                l["enumeration_window_s"].get<int64_t>(),
                l["enumeration_action"].get<std::string>() == "suspend" ? "suspended" : "logged")
          : std::string("off");
  return fmt::format(
      "API limits (this configuration): rate_per_key {}, daily_quota_per_key {}, rate_per_ip {} "
      "per replica, max_connections_per_ip {} (of {}), a request within {} s (idle {} s); "
      "enumeration watch: {}\n",
      per_second(l["rate_per_key"].get<double>()), count(l["daily_quota_per_key"].get<int64_t>()),
      per_second(l["rate_per_ip"].get<double>()), count(l["max_connections_per_ip"].get<int64_t>()),
      l["max_connections"].get<int64_t>(), l["read_timeout_s"].get<int64_t>(),
      l["idle_timeout_s"].get<int64_t>(), enumeration);
}

class StatusCommand : public Command {
 public:
  CLI::App* Register(CLI::App& app) override {
    CLI::App* cmd = app.add_subcommand(
        "status", "Each stage's position, lag, rate and health, and the measured freshness");
    cmd->add_option("--data-dir", data_dir_, "The data directory of a `pdv up` (its pdv.yaml)");
    cmd->add_flag("--json", json_, "The same as JSON");
    for (const char* key : {"oltp_url", "warehouse_url", "redis_url", "listen"}) {
      std::string flag = std::string("--") + key;
      for (char& c : flag) c = c == '_' ? '-' : c;
      flags_.Add(cmd, flag, key);
    }
    return cmd;
  }
  int Run(const Config& config, std::stop_token) override {
    nlohmann::json status = monitor::CollectStatus(SourcesFrom(config), 1000);
    status["api_limits"] = ApiLimits(config);
    if (json_) {
      fmt::print("{}\n", status.dump(2));
    } else {
      fmt::print("{}", monitor::FormatStatus(status));
      fmt::print("{}", FormatApiLimits(status["api_limits"]));
    }
    bool healthy = true;
    for (const auto& s : status["stages"]) healthy &= s["health"] != "down";
    return healthy ? kExitOk : kExitFailure;
  }

 private:
  std::string data_dir_;
  bool json_ = false;
};

class MonitorCommand : public Command {
 public:
  CLI::App* Register(CLI::App& app) override {
    CLI::App* cmd = app.add_subcommand(
        "monitor",
        "Probes freshness (a marker customer changed every second, timed to the API's answer) "
        "and publishes the pipeline's status for /status and pdv status");
    cmd->add_option("--api-key-file", key_file_, "File holding the API key the probe uses")
        ->required();
    cmd->add_option("--interval-ms", interval_ms_, "Milliseconds between probes")
        ->capture_default_str()
        ->check(CLI::Range(100, 60000));
    return cmd;
  }
  int Run(const Config& config, std::stop_token stop) override {
    Logger log = MakeLogger(config, "monitor");
    std::ifstream in(key_file_);
    std::string key;
    std::getline(in, key);
    if (key.empty()) return Finish("pdv monitor", Status::Error("no API key in " + key_file_));
    // The probe's hash as given (pdv up), else made from cpf_key.
    std::string probe_hash = config.Get("monitor.probe_cpf_hash").value_or("");
    if (probe_hash.empty()) {
      auto cpf_key = config.Require("cpf_key");
      if (!cpf_key.ok()) return Finish("pdv monitor", cpf_key.status());
      probe_hash = monitor::ProbeCpfHash(*cpf_key);
    }
    monitor::MonitorOptions options{.sources = SourcesFrom(config),
                                    .api_key = key,
                                    .probe_cpf_hash = probe_hash,
                                    .interval_ms = interval_ms_};
    return Finish("pdv monitor", monitor::Run(options, log, stop));
  }

 private:
  std::string key_file_;
  int interval_ms_ = 1000;
};

}  // namespace

std::unique_ptr<Command> MakeStatusCommand() { return std::make_unique<StatusCommand>(); }
std::unique_ptr<Command> MakeMonitorCommand() { return std::make_unique<MonitorCommand>(); }

}  // namespace pdv::cli

namespace pdv::cli {
namespace {

class ReconcileCommand : public Command {
 public:
  CLI::App* Register(CLI::App& app) override {
    CLI::App* cmd = app.add_subcommand(
        "reconcile",
        "Compares OLTP, RAW (latest state), the dimension and Redis once the pipeline has "
        "caught up; exits 1 on any difference");
    cmd->add_option("--data-dir", data_dir_, "The data directory of a `pdv up` (its pdv.yaml)");
    cmd->add_option("--wait", options_.wait_s, "Seconds to wait for the pipeline to catch up")
        ->capture_default_str();
    cmd->add_option("--show", options_.show, "Differences listed per comparison and kind")
        ->capture_default_str();
    cmd->add_option("--grace-minutes", options_.grace_minutes,
                    "The eligibility rule's grace period (the project's carencia_minutos)")
        ->capture_default_str();
    cmd->add_flag("--show-values", options_.show_values,
                  "Print the differing values (personal data) too, not only cliente_id and "
                  "column");
    return cmd;
  }
  int Run(const Config& config, std::stop_token) override {
    options_.sources = SourcesFrom(config);
    options_.erasure_key = config.Get("erasure_key").value_or("");
    auto report = monitor::Reconcile(options_);
    if (!report.ok()) return Finish("pdv reconcile", report.status());
    fmt::print("{}", monitor::FormatReconcile(*report));
    return report->caught_up && report->Clean() ? kExitOk : kExitFailure;
  }

 private:
  std::string data_dir_;
  monitor::ReconcileOptions options_;
};

}  // namespace

std::unique_ptr<Command> MakeReconcileCommand() { return std::make_unique<ReconcileCommand>(); }

}  // namespace pdv::cli
