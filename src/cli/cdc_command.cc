#include <fmt/format.h>

#include "cdc/cdc.h"
#include "cli/command.h"

namespace pdv::cli {
namespace {

class CdcCommand : public Command {
 public:
  CLI::App* Register(CLI::App& app) override {
    CLI::App* cmd = app.add_subcommand(
        "cdc",
        "Log-based change data capture: streams clientes_clube's changes from the OLTP "
        "PostgreSQL (logical replication, pgoutput) into warehouse.raw, exactly once");
    flags_.Add(cmd, "--oltp-url", "oltp_url");
    flags_.Add(cmd, "--warehouse-url", "warehouse_url");
    flags_.Add(cmd, "--slot", "cdc.slot");
    flags_.Add(cmd, "--publication", "cdc.publication");
    flags_.Add(cmd, "--batch-rows", "cdc.batch_rows");
    flags_.Add(cmd, "--flush-idle-ms", "cdc.flush_idle_ms");
    flags_.Add(cmd, "--max-batch-age-ms", "cdc.max_batch_age_ms");
    flags_.Add(cmd, "--decoding-work-mem", "cdc.decoding_work_mem");
    flags_.Add(cmd, "--retry-timeout", "cdc.retry_timeout");
    flags_.Add(cmd, "--streaming", "cdc.streaming");
    flags_.Add(cmd, "--transaction-memory-mb", "cdc.transaction_memory_mb");
    flags_.Add(cmd, "--spill-dir", "cdc.spill_dir");
    flags_.Add(cmd, "--metrics-listen", "cdc.metrics_listen");
    cmd->add_flag("--once", once_,
                  "Stream until the source's WAL position at start is in RAW, then exit 0");
    cmd->add_flag("--resync", resync_,
                  "Drop the slot (if any) and take a new snapshot: after an operator dropped "
                  "the slot; keys missing from the new snapshot get deletion rows, rows equal to "
                  "RAW's latest state are not appended again");
    cmd->add_flag("--auto-resync", auto_resync_,
                  "When the slot is missing on the source after a snapshot (a failover to a "
                  "standby: PostgreSQL 15 has no failover slots), resync by itself instead of "
                  "stopping with an error");
    return cmd;
  }

  int Run(const Config& config, std::stop_token stop) override {
    Logger log = MakeLogger(config, "cdc");
    cdc::CdcOptions options{
        .oltp_url = *config.Get("oltp_url"),
        .warehouse_url = *config.Get("warehouse_url"),
        .slot = *config.Get("cdc.slot"),
        .publication = *config.Get("cdc.publication"),
        .once = once_,
        .resync = resync_,
        .auto_resync = auto_resync_,
        .batch_rows = static_cast<size_t>(config.GetInt("cdc.batch_rows")),
        .flush_idle = std::chrono::milliseconds(config.GetInt("cdc.flush_idle_ms")),
        .max_batch_age = std::chrono::milliseconds(config.GetInt("cdc.max_batch_age_ms")),
        .decoding_work_mem = *config.Get("cdc.decoding_work_mem"),
        .streaming = config.Get("cdc.streaming") == "on",
        .transaction_memory_bytes = static_cast<size_t>(config.GetInt("cdc.transaction_memory_mb"))
                                    << 20,
        .spill_dir = *config.Get("cdc.spill_dir"),
        .retry_timeout_s = config.GetDouble("cdc.retry_timeout"),
        .progress = stderr,
        .metrics_listen = *config.Get("cdc.metrics_listen"),
        .erasure_key = config.Get("erasure_key").value_or(""),
        .erasure_register = config.Get("erasure_register").value_or(""),
        .retention_days = static_cast<int>(config.GetInt("raw.retention_days"))};
    Status done = cdc::Run(options, log, stop);
    return Finish("pdv cdc", done);
  }

 private:
  bool once_ = false, resync_ = false, auto_resync_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeCdcCommand() { return std::make_unique<CdcCommand>(); }

}  // namespace pdv::cli
