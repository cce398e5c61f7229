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
        "Runs the platform locally with a demo workload: creates (first time) and starts its "
        "own OLTP PostgreSQL under the data directory, loads customers, runs the sign-up "
        "workload until Ctrl-C");
    data_dir_ = options_.data_dir.string();
    cmd->add_option("--data-dir", data_dir_, "Where servers, data and pdv.yaml live")
        ->capture_default_str();
    cmd->add_option("--initial", options_.initial, "Customers loaded when the table is empty")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--rate", options_.rate, "Workload operations per second")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    return cmd;
  }

  int Run(const Config& config, std::stop_token stop) override {
    Logger log = MakeLogger(config, "up");
    options_.data_dir = data_dir_;
    Status done = Up(options_, log, stop);
    return Finish("pdv up", done);
  }

 private:
  UpOptions options_;
  std::string data_dir_;
};

}  // namespace

std::unique_ptr<Command> MakeUpCommand() { return std::make_unique<UpCommand>(); }

}  // namespace pdv::cli
