#include <fmt/format.h>

#include "api/apikeys.h"
#include "cache/cache.h"
#include "cli/command.h"

namespace pdv::cli {
namespace {

class CacheCommand : public Command {
 public:
  CLI::App* Register(CLI::App& app) override {
    CLI::App* cmd = app.add_subcommand(
        "cache", "Loads the POS dimension (marts.dim_clientes_clube) into Redis");
    cmd->require_subcommand(1);
    sync_ = cmd->add_subcommand("sync",
                                "Applies the dimension's changes since the last sync "
                                "(a full load the first time)");
    sync_->add_flag("--full", full_,
                    "Load every customer as a new version and switch to it atomically");
    watch_ = cmd->add_subcommand("watch", "Syncs on every notification from the transform stage");
    for (CLI::App* sub : {sync_, watch_}) {
      flags_.Add(sub, "--warehouse-url", "warehouse_url");
      flags_.Add(sub, "--redis-url", "redis_url");
    }
    flags_.Add(sync_, "--retry-timeout", "cache.retry_timeout");
    return cmd;
  }

  int Run(const Config& config, std::stop_token stop) override {
    Logger log = MakeLogger(config, "cache");
    cache::CacheOptions options{.warehouse_url = *config.Get("warehouse_url"),
                                .redis_url = *config.Get("redis_url"),
                                .progress = stderr,
                                .replica_ack_timeout = std::chrono::milliseconds(
                                    static_cast<int64_t>(config.GetDouble("cache.replica_ack_ms"))),
                                .retry_timeout_s = config.GetDouble("cache.retry_timeout")};
    Status done;
    if (watch_->parsed()) {
      // API keys are the API's; the cache stage, which holds both URLs, refills them
      // when Redis lost its data.
      options.restore_api_keys = [&](redis::Client& redis) {
        size_t restored = 0;
        Status s = api::RestoreApiKeys(redis, options.warehouse_url, &restored);
        if (s.ok() && restored > 0) log.Warn("cache_api_keys_restored", {{"keys", restored}});
        return s;
      };
      done = cache::Watch(options, log, stop);
    } else {
      auto r = cache::SyncWithRetry(full_, options, log, stop);
      done = r.status();
    }
    return Finish("pdv cache", done);
  }

 private:
  CLI::App* sync_ = nullptr;
  CLI::App* watch_ = nullptr;
  bool full_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeCacheCommand() { return std::make_unique<CacheCommand>(); }

}  // namespace pdv::cli
