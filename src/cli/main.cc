// The pdv command line: the only place that knows every stage.

#include <fmt/format.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/signals.h"
#include "common/config.h"
#include "common/fd_limit.h"

namespace pdv::cli {
namespace {

int Main(int argc, char** argv) {
  // Servers keep accepting through descriptor exhaustion; first, as many as allowed.
  RaiseFdLimit();
  // Memory holds the CPF key, API keys and URLs with passwords: no core dumps, and no
  // ptrace or /proc/<pid>/mem by other processes of the same user.
  rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  ::prctl(PR_SET_DUMPABLE, 0);
  StopOnSignal signals;

  CLI::App app{
      "pdv: loyalty-club validation for point-of-sale terminals, from OLTP sign-up "
      "to a sub-millisecond API"};
  app.name("pdv");
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Help for every subcommand");
  // Global options are taken before or after the subcommand's name: subcommands (created
  // below, so they inherit it) pass options they don't know up to this parser.
  app.fallthrough();
  std::string config_file, data_dir;
  app.add_option("--config", config_file,
                 "Configuration file (default: $PDV_CONFIG, else ./pdv.yaml if present)");
  CLI::Option* global_data_dir =
      app.add_option("--data-dir", data_dir,
                     "The data directory of a `pdv up` (its pdv.yaml is the configuration)");
  ConfigFlags global_flags;
  global_flags.Add(&app, "--log-format", "log_format");
  global_flags.Add(&app, "--log-level", "log_level");

  std::vector<std::unique_ptr<Command>> commands;
  commands.push_back(MakeGenerateCommand());
  commands.push_back(MakeCdcCommand());
  commands.push_back(MakeTransformCommand());
  commands.push_back(MakeCacheCommand());
  commands.push_back(MakeServeCommand());
  commands.push_back(MakeApiKeyCommand());
  commands.push_back(MakeUpCommand());
  commands.push_back(MakeDownCommand());
  commands.push_back(MakeStatusCommand());
  commands.push_back(MakeMonitorCommand());
  commands.push_back(MakeReconcileCommand());
  commands.push_back(MakeGrantCommand());
  commands.push_back(MakeSubjectCommand());
  std::vector<CLI::App*> subcommands;
  for (auto& c : commands) subcommands.push_back(c->Register(app));

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
  // `--data-dir DIR` (status, reconcile, apikey, down...) means DIR/pdv.yaml, as `pdv up`
  // wrote it; `up` itself reads that file on its own.
  for (CLI::App* sub : app.get_subcommands()) {
    std::vector<CLI::App*> chain{sub};
    for (CLI::App* inner : sub->get_subcommands()) chain.push_back(inner);
    std::optional<std::string> dir;
    if (global_data_dir->count() > 0) dir = data_dir;
    for (CLI::App* c : chain) {
      CLI::Option* opt = c->get_option_no_throw("--data-dir");
      if (!opt) continue;
      if (opt->count() > 0) {
        dir = opt->as<std::string>();
      } else if (global_data_dir->count() > 0) {
        // Given before the subcommand's name: the subcommand's own option gets it.
        opt->add_result(data_dir);
        opt->run_callback();
      }
    }
    if (dir && config_file.empty() && sub->get_name() != "up") {
      sources.file = (std::filesystem::path(*dir) / "pdv.yaml").string();
    }
  }
  sources.env = ProcessEnvironment();
  sources.flags = global_flags.Given();
  for (auto& c : commands) {
    for (auto& [k, v] : c->flags().Given()) sources.flags[k] = v;
  }
  auto config = Config::Load(sources);
  if (!config.ok()) {
    fmt::print(stderr, "pdv: {}\n", config.message());
    return kExitUsage;
  }
  for (size_t i = 0; i < commands.size(); ++i) {
    if (!subcommands[i]->parsed()) continue;
    // Errors are values; this is the net under them: whatever escapes a command still
    // ends it with an answer, never an abort.
    try {
      return commands[i]->Run(*config, signals.token());
    } catch (const std::exception& e) {
      fmt::print(stderr, "pdv {}: internal error: {} (a defect of pdv: please report it)\n",
                 subcommands[i]->get_name(), e.what());
    } catch (...) {
      fmt::print(stderr, "pdv {}: internal error (a defect of pdv: please report it)\n",
                 subcommands[i]->get_name());
    }
    return kExitInternal;
  }
  return kExitUsage;
}

}  // namespace
}  // namespace pdv::cli

int main(int argc, char** argv) { return pdv::cli::Main(argc, argv); }
