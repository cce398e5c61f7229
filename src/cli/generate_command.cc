#include <fmt/format.h>

#include <cstdio>
#include <ctime>

#include "cli/command.h"
#include "generate/generate.h"

namespace pdv::cli {
namespace {

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
  return static_cast<int64_t>(timegm(&tm)) * 1'000'000;
}

class GenerateCommand : public Command {
 public:
  CLI::App* Register(CLI::App& app) override {
    CLI::App* cmd = app.add_subcommand(
        "generate",
        "The synthetic sign-up system: creates the OLTP schema, bulk-loads customers, then runs "
        "a continuous insert/update/delete workload");
    flags_.Add(cmd, "--oltp-url", "oltp_url");
    flags_.Add(cmd, "--seed", "generate.seed");
    flags_.Add(cmd, "--initial", "generate.initial");
    flags_.Add(cmd, "--rate", "generate.rate");
    flags_.Add(cmd, "--duration", "generate.duration");
    flags_.Add(cmd, "--delete-share", "generate.delete_share");
    flags_.Add(cmd, "--retry-timeout", "generate.retry_timeout");
    cmd->add_flag("--only-if-empty", only_if_empty_,
                  "Skip the --initial load when the table already has customers (restarts)");
    cmd->add_option("--cpf-out", cpf_out_,
                    "Append the plaintext CPFs of created customers to FILE (mode 0600), for "
                    "test and benchmark clients only");
    cmd->add_option("--as-of", as_of_,
                    "Initial load's sign-up dates end at this UTC instant "
                    "(YYYY-MM-DDTHH:MM:SSZ; default now): with --seed, the same data");
    cmd->footer(
        "The cpf_hash key comes from cpf_key in pdv.yaml or PDV_CPF_KEY (never a flag: flags "
        "are visible to every user in the process list).");
    return cmd;
  }

  int Run(const Config& config, std::stop_token stop) override {
    Logger log = MakeLogger(config, "generate");
    auto key = config.Require("cpf_key");
    if (!key.ok()) {
      fmt::print(stderr, "pdv generate: {}\n", key.message());
      return kExitUsage;
    }
    generate::GenerateOptions options{
        .oltp_url = *config.Get("oltp_url"),
        .cpf_key = *key,
        .seed = static_cast<uint64_t>(config.GetInt("generate.seed")),
        .initial = static_cast<uint64_t>(config.GetInt("generate.initial")),
        .initial_only_if_empty = only_if_empty_,
        .rate = config.GetDouble("generate.rate"),
        .duration_s = config.GetDouble("generate.duration"),
        .delete_share = config.GetDouble("generate.delete_share"),
        .retry_timeout_s = config.GetDouble("generate.retry_timeout"),
        .progress = stderr};
    if (!cpf_out_.empty()) options.cpf_out = cpf_out_;
    if (!as_of_.empty()) {
      options.as_of_us = ParseUtc(as_of_);
      if (!options.as_of_us) {
        fmt::print(stderr, "pdv generate: --as-of: expected YYYY-MM-DDTHH:MM:SSZ, got '{}'\n",
                   as_of_);
        return kExitUsage;
      }
    }
    if (options.initial == 0 && options.rate <= 0) {
      log.Info("nothing_to_do", {{"hint", "give --initial N and/or --rate R"}});
    }
    Status done = generate::Run(options, log, stop);
    return Finish("pdv generate", done);
  }

 private:
  std::string cpf_out_, as_of_;
  bool only_if_empty_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeGenerateCommand() { return std::make_unique<GenerateCommand>(); }

}  // namespace pdv::cli
