// pdv up, pdv down: the whole platform on this machine.

#include <fmt/format.h>

#include "cli/command.h"
#include "cli/up.h"

namespace pdv::cli {
namespace {

class UpCommand : public Command {
 public:
  CLI::App* Register(CLI::App& app) override {
    CLI::App* cmd = app.add_subcommand(
        "up",
        "Runs the whole platform locally with a demo workload: OLTP and warehouse "
        "PostgreSQL, Redis and every stage, supervised, under one data directory (Ctrl-C or "
        "`pdv down` stops it)");
    data_dir_ = options_.data_dir.string();
    cmd->add_option("--data-dir", data_dir_, "Where servers, data, logs and pdv.yaml live")
        ->capture_default_str();
    cmd->add_option("--initial", options_.initial, "Customers loaded when the table is empty")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--rate", options_.rate, "Workload operations per second")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--listen", listen_,
                    "API address on first use (default 127.0.0.1:8080; later: pdv.yaml)");
    cmd->add_option("--probe-interval-ms", options_.probe_interval_ms,
                    "Milliseconds between freshness probes")
        ->capture_default_str()
        ->check(CLI::Range(100, 60000));
    cmd->add_option("--ready-timeout", options_.ready_timeout_s,
                    "Seconds to wait for the first answered lookup")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    return cmd;
  }

  int Run(const Config& config, std::stop_token stop) override {
    Logger log = MakeLogger(config, "up");
    options_.data_dir = data_dir_;
    if (!listen_.empty()) options_.listen = listen_;
    return Finish("pdv up", Up(options_, log, stop));
  }

 private:
  UpOptions options_;
  std::string data_dir_, listen_;
};

class DownCommand : public Command {
 public:
  CLI::App* Register(CLI::App& app) override {
    CLI::App* cmd = app.add_subcommand("down", "Stops the `pdv up` of a data directory");
    cmd->add_option("--data-dir", data_dir_, "The data directory of that `pdv up`")
        ->capture_default_str();
    return cmd;
  }
  int Run(const Config&, std::stop_token) override {
    Status s = Down(data_dir_, std::chrono::seconds(120));
    if (s.ok()) fmt::print("pdv down: stopped the platform of {}\n", data_dir_);
    return Finish("pdv down", s);
  }

 private:
  std::string data_dir_ = ".pdv";
};

}  // namespace

std::unique_ptr<Command> MakeUpCommand() { return std::make_unique<UpCommand>(); }
std::unique_ptr<Command> MakeDownCommand() { return std::make_unique<DownCommand>(); }

}  // namespace pdv::cli
