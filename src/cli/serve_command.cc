#include <fmt/format.h>

#include "api/apikeys.h"
#include "api/serve.h"
#include "cli/command.h"

namespace pdv::cli {
namespace {

class ServeCommand : public Command {
 public:
  CLI::App* Register(CLI::App& app) override {
    CLI::App* cmd = app.add_subcommand(
        "serve", "The HTTP API for the POS: customer eligibility by CPF, from Redis only");
    flags_.Add(cmd, "--listen", "listen");
    flags_.Add(cmd, "--redis-url", "redis_url");
    flags_.Add(cmd, "--tls-cert", "api.tls_cert");
    flags_.Add(cmd, "--tls-key", "api.tls_key");
    flags_.Add(cmd, "--threads", "api.threads");
    flags_.Add(cmd, "--max-connections", "api.max_connections");
    flags_.Add(cmd, "--max-connections-per-ip", "api.max_connections_per_ip");
    flags_.Add(cmd, "--rate-per-key", "api.rate_per_key");
    flags_.Add(cmd, "--daily-quota-per-key", "api.daily_quota_per_key");
    flags_.Add(cmd, "--rate-per-ip", "api.rate_per_ip");
    flags_.Add(cmd, "--enumeration-ratio", "api.enumeration_ratio");
    flags_.Add(cmd, "--enumeration-min-lookups", "api.enumeration_min_lookups");
    flags_.Add(cmd, "--enumeration-window-s", "api.enumeration_window_s");
    flags_.Add(cmd, "--enumeration-suspend", "api.enumeration_suspend");
    flags_.Add(cmd, "--redis-timeout-ms", "api.redis_timeout_ms");
    flags_.Add(cmd, "--idle-timeout-s", "api.idle_timeout_s");
    flags_.Add(cmd, "--read-timeout-s", "api.read_timeout_s");
    flags_.Add(cmd, "--near-cache", "api.near_cache");
    return cmd;
  }

  int Run(const Config& config, std::stop_token stop) override {
    Logger log = MakeLogger(config, "serve");
    auto key = config.Require("cpf_key");
    if (!key.ok()) {
      fmt::print(stderr, "pdv serve: {}\n", key.message());
      return kExitUsage;
    }
    api::ServeOptions options{
        .listen = *config.Get("listen"),
        .redis_url = *config.Get("redis_url"),
        .cpf_key = *key,
        .tls_cert = config.Get("api.tls_cert").value_or(""),
        .tls_key = config.Get("api.tls_key").value_or(""),
        .threads = static_cast<int>(config.GetInt("api.threads")),
        .max_connections = static_cast<size_t>(config.GetInt("api.max_connections")),
        .max_connections_per_ip = static_cast<size_t>(config.GetInt("api.max_connections_per_ip")),
        .rate_per_key = config.GetDouble("api.rate_per_key"),
        .daily_quota_per_key = static_cast<uint64_t>(config.GetInt("api.daily_quota_per_key")),
        .rate_per_ip = config.GetDouble("api.rate_per_ip"),
        .enumeration_ratio = config.GetDouble("api.enumeration_ratio"),
        .enumeration_min_lookups =
            static_cast<uint64_t>(config.GetInt("api.enumeration_min_lookups")),
        .enumeration_window = std::chrono::seconds(config.GetInt("api.enumeration_window_s")),
        .enumeration_suspend = config.Get("api.enumeration_suspend") == "on",
        .enumeration_suspend_for = std::chrono::seconds(config.GetInt("api.enumeration_suspend_s")),
        .redis_timeout = std::chrono::milliseconds(config.GetInt("api.redis_timeout_ms")),
        .near_cache = config.Get("api.near_cache") == "on",
        .read_timeout = std::chrono::seconds(config.GetInt("api.read_timeout_s")),
        .idle_timeout = std::chrono::seconds(config.GetInt("api.idle_timeout_s"))};
    auto fields = api::ParseAnswerFields(*config.Get("api.fields"));
    if (!fields.ok()) {
      fmt::print(stderr, "pdv serve: {}\n", fields.message());
      return kExitUsage;
    }
    options.fields = *fields;
    Status done = api::Serve(options, log, stop);
    return Finish("pdv serve", done);
  }
};

class ApiKeyCommand : public Command {
 public:
  CLI::App* Register(CLI::App& app) override {
    CLI::App* cmd =
        app.add_subcommand("apikey",
                           "API keys of the POS API (stored hashed: in the warehouse, durably, "
                           "and in Redis, which the API reads)");
    cmd->require_subcommand(1);
    create_ = cmd->add_subcommand("create", "Creates a key and prints it, alone, once");
    revoke_ = cmd->add_subcommand("revoke", "Revokes the key with this name");
    list_ = cmd->add_subcommand("list", "Lists key names, creation times and revocations");
    for (CLI::App* sub : {create_, revoke_}) sub->add_option("NAME", name_, "Key name")->required();
    for (CLI::App* sub : {create_, revoke_, list_}) {
      flags_.Add(sub, "--redis-url", "redis_url");
      flags_.Add(sub, "--warehouse-url", "warehouse_url");
      sub->add_option("--data-dir", data_dir_, "The data directory of a `pdv up` (its pdv.yaml)");
    }
    return cmd;
  }

  int Run(const Config& config, std::stop_token) override {
    std::string url = *config.Get("redis_url");
    auto warehouse_url = config.Require("warehouse_url");
    if (!warehouse_url.ok()) return Finish("pdv apikey", warehouse_url.status());
    Status done;
    if (create_->parsed()) {
      auto key = api::CreateApiKey(url, *warehouse_url, name_);
      if (key.ok()) fmt::print("{}\n", *key);
      done = key.status();
    } else if (revoke_->parsed()) {
      done = api::RevokeApiKey(url, *warehouse_url, name_);
    } else {
      auto keys = api::ListApiKeys(*warehouse_url);
      if (keys.ok()) {
        for (const auto& k : *keys) {
          fmt::print("{}\t{}\t{}\n", k.name, k.created_at, k.revoked ? "revoked" : "active");
        }
      }
      done = keys.status();
    }
    return Finish("pdv apikey", done);
  }

 private:
  CLI::App *create_ = nullptr, *revoke_ = nullptr, *list_ = nullptr;
  std::string name_;
  std::string data_dir_;  // read by main: --data-dir DIR means DIR/pdv.yaml
};

}  // namespace

std::unique_ptr<Command> MakeServeCommand() { return std::make_unique<ServeCommand>(); }
std::unique_ptr<Command> MakeApiKeyCommand() { return std::make_unique<ApiKeyCommand>(); }

}  // namespace pdv::cli
