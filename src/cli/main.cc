// The pdv command line: the only place that knows every stage.

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <string>

#include "cdc/cdc.h"
#include "cli/signals.h"
#include "cli/up.h"
#include "common/config.h"
#include "common/log.h"
#include "generate/generate.h"

namespace pdv::cli {
namespace {

constexpr int kExitUsage = 2;
constexpr int kExitFailure = 1;

// Options that override configuration keys, collected after parsing.
class ConfigFlags {
 public:
  // Adds `--flag VALUE` to `app` as an override of config key `key`.
  void Add(CLI::App* app, const std::string& flag, const std::string& key) {
    const ConfigKey* spec = nullptr;
    for (const auto& k : AllConfigKeys()) {
      if (k.name == key) spec = &k;
    }
    std::string help = spec ? spec->help : key;
    if (spec && spec->default_value) help += fmt::format(" (default {})", *spec->default_value);
    help += fmt::format(" [config {}, env {}]", key, EnvVarFor(key));
    auto& slot = values_[key];
    slot.flag = flag;
    app->add_option(flag, slot.value, help);
  }
  std::map<std::string, ConfigSources::Flag> Given() const {
    std::map<std::string, ConfigSources::Flag> out;
    for (const auto& [key, slot] : values_) {
      if (!slot.value.empty()) out[key] = slot;
    }
    return out;
  }

 private:
  std::map<std::string, ConfigSources::Flag> values_;
};

// "2025-01-31T12:00:00Z" -> µs since epoch.
std::optional<int64_t> ParseUtc(const std::string& text) {
  std::tm tm{};
  char z = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &z) != 7 ||
      z != 'Z') {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  time_t secs = timegm(&tm);
  return static_cast<int64_t>(secs) * 1'000'000;
}

Logger MakeLogger(const Config& config, const std::string& component) {
  return Logger(stderr, component,
                config.Get("log_format") == "json" ? LogFormat::kJson : LogFormat::kKeyValue,
                config.Get("log_level") == "debug"   ? LogLevel::kDebug
                : config.Get("log_level") == "warn"  ? LogLevel::kWarn
                : config.Get("log_level") == "error" ? LogLevel::kError
                                                     : LogLevel::kInfo);
}

int Main(int argc, char** argv) {
  StopOnSignal signals;

  CLI::App app{
      "pdv: loyalty-club validation for point-of-sale terminals, from OLTP sign-up "
      "to a sub-millisecond API"};
  app.name("pdv");
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Help for every subcommand");
  std::string config_file;
  app.add_option("--config", config_file,
                 "Configuration file (default: $PDV_CONFIG, else ./pdv.yaml if present)");
  ConfigFlags global_flags;
  global_flags.Add(&app, "--log-format", "log_format");
  global_flags.Add(&app, "--log-level", "log_level");

  // generate
  CLI::App* generate = app.add_subcommand(
      "generate",
      "The synthetic sign-up system: creates the OLTP schema, bulk-loads customers, then runs "
      "a continuous insert/update/delete workload");
  ConfigFlags generate_flags;
  generate_flags.Add(generate, "--oltp-url", "oltp_url");
  generate_flags.Add(generate, "--seed", "generate.seed");
  generate_flags.Add(generate, "--initial", "generate.initial");
  generate_flags.Add(generate, "--rate", "generate.rate");
  generate_flags.Add(generate, "--duration", "generate.duration");
  generate_flags.Add(generate, "--delete-share", "generate.delete_share");
  generate_flags.Add(generate, "--retry-timeout", "generate.retry_timeout");
  std::string cpf_out, as_of;
  generate->add_option("--cpf-out", cpf_out,
                       "Append the plaintext CPFs of created customers to FILE (mode 0600), for "
                       "test and benchmark clients only");
  generate->add_option("--as-of", as_of,
                       "Initial load's sign-up dates end at this UTC instant "
                       "(YYYY-MM-DDTHH:MM:SSZ; default now): with --seed, the same data");
  generate->footer(
      "The cpf_hash key comes from cpf_key in pdv.yaml or PDV_CPF_KEY (never a flag: flags "
      "are visible to every user in the process list).");

  // cdc
  CLI::App* cdc = app.add_subcommand(
      "cdc",
      "Log-based change data capture: streams clientes_clube's changes from the OLTP "
      "PostgreSQL (logical replication, pgoutput) into warehouse.raw, exactly once");
  ConfigFlags cdc_flags;
  cdc_flags.Add(cdc, "--oltp-url", "oltp_url");
  cdc_flags.Add(cdc, "--warehouse-url", "warehouse_url");
  cdc_flags.Add(cdc, "--slot", "cdc.slot");
  cdc_flags.Add(cdc, "--publication", "cdc.publication");
  cdc_flags.Add(cdc, "--batch-rows", "cdc.batch_rows");
  cdc_flags.Add(cdc, "--flush-idle-ms", "cdc.flush_idle_ms");
  cdc_flags.Add(cdc, "--max-batch-age-ms", "cdc.max_batch_age_ms");
  cdc_flags.Add(cdc, "--decoding-work-mem", "cdc.decoding_work_mem");
  cdc_flags.Add(cdc, "--retry-timeout", "cdc.retry_timeout");
  cdc_flags.Add(cdc, "--metrics-listen", "cdc.metrics_listen");
  bool cdc_once = false, cdc_resync = false;
  cdc->add_flag("--once", cdc_once,
                "Stream until the source's WAL position at start is in RAW, then exit 0");
  cdc->add_flag("--resync", cdc_resync,
                "Drop the slot (if any) and take a new snapshot: after an operator dropped the "
                "slot; keys missing from the new snapshot get deletion rows");

  // up
  CLI::App* up = app.add_subcommand(
      "up",
      "Runs the platform locally with a demo workload: creates (first time) and starts its own "
      "OLTP PostgreSQL under the data directory, loads customers, runs the sign-up workload "
      "until Ctrl-C");
  UpOptions up_options;
  std::string data_dir = up_options.data_dir.string();
  up->add_option("--data-dir", data_dir, "Where servers, data and pdv.yaml live")
      ->capture_default_str();
  up->add_option("--initial", up_options.initial, "Customers loaded when the table is empty")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  up->add_option("--rate", up_options.rate, "Workload operations per second")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string where = "pdv";
    for (auto* sub : app.get_subcommands()) where += " " + sub->get_name();
    fmt::print(stderr, "{}: {} (see {} --help)\n", where, e.what(), where);
    return kExitUsage;
  }

  ConfigSources sources;
  if (!config_file.empty()) sources.file = config_file;
  sources.env = ProcessEnvironment();
  sources.flags = global_flags.Given();
  for (auto& [k, v] : generate_flags.Given()) sources.flags[k] = v;
  for (auto& [k, v] : cdc_flags.Given()) sources.flags[k] = v;
  auto config = Config::Load(sources);
  if (!config.ok()) {
    fmt::print(stderr, "pdv: {}\n", config.message());
    return kExitUsage;
  }

  if (up->parsed()) {
    Logger log = MakeLogger(*config, "up");
    up_options.data_dir = data_dir;
    Status done = Up(up_options, log, signals.token());
    if (!done.ok()) {
      fmt::print(stderr, "pdv up: {}\n", done.message());
      return kExitFailure;
    }
    return 0;
  }

  if (cdc->parsed()) {
    Logger log = MakeLogger(*config, "cdc");
    cdc::CdcOptions options{
        .oltp_url = *config->Get("oltp_url"),
        .warehouse_url = *config->Get("warehouse_url"),
        .slot = *config->Get("cdc.slot"),
        .publication = *config->Get("cdc.publication"),
        .once = cdc_once,
        .resync = cdc_resync,
        .batch_rows = static_cast<size_t>(config->GetInt("cdc.batch_rows")),
        .flush_idle = std::chrono::milliseconds(config->GetInt("cdc.flush_idle_ms")),
        .max_batch_age = std::chrono::milliseconds(config->GetInt("cdc.max_batch_age_ms")),
        .decoding_work_mem = *config->Get("cdc.decoding_work_mem"),
        .retry_timeout_s = config->GetDouble("cdc.retry_timeout"),
        .progress = stderr,
        .metrics_listen = *config->Get("cdc.metrics_listen")};
    Status done = cdc::Run(options, log, signals.token());
    if (!done.ok()) {
      fmt::print(stderr, "pdv cdc: {}\n", done.message());
      return kExitFailure;
    }
    return 0;
  }

  if (generate->parsed()) {
    Logger log = MakeLogger(*config, "generate");
    auto key = config->Require("cpf_key");
    if (!key.ok()) {
      fmt::print(stderr, "pdv generate: {}\n", key.message());
      return kExitUsage;
    }
    generate::GenerateOptions options{
        .oltp_url = *config->Get("oltp_url"),
        .cpf_key = *key,
        .seed = static_cast<uint64_t>(config->GetInt("generate.seed")),
        .initial = static_cast<uint64_t>(config->GetInt("generate.initial")),
        .rate = config->GetDouble("generate.rate"),
        .duration_s = config->GetDouble("generate.duration"),
        .delete_share = config->GetDouble("generate.delete_share"),
        .retry_timeout_s = config->GetDouble("generate.retry_timeout"),
        .progress = stderr};
    if (!cpf_out.empty()) options.cpf_out = cpf_out;
    if (!as_of.empty()) {
      options.as_of_us = ParseUtc(as_of);
      if (!options.as_of_us) {
        fmt::print(stderr, "pdv generate: --as-of: expected YYYY-MM-DDTHH:MM:SSZ, got '{}'\n",
                   as_of);
        return kExitUsage;
      }
    }
    if (options.initial == 0 && options.rate <= 0) {
      log.Info("nothing_to_do", {{"hint", "give --initial N and/or --rate R"}});
    }
    Status done = generate::Run(options, log, signals.token());
    if (!done.ok()) {
      fmt::print(stderr, "pdv generate: {}\n", done.message());
      return kExitFailure;
    }
    return 0;
  }
  return kExitUsage;
}

}  // namespace
}  // namespace pdv::cli

int main(int argc, char** argv) { return pdv::cli::Main(argc, argv); }
