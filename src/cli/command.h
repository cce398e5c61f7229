#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <memory>
#include <stop_token>
#include <string>

#include "common/config.h"
#include "common/log.h"

namespace pdv::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;    // the command ran and failed
inline constexpr int kExitUsage = 2;      // bad flags or configuration
inline constexpr int kExitInternal = 70;  // a defect: an exception no layer answered (EX_SOFTWARE)

// Options that override configuration keys, collected after parsing.
class ConfigFlags {
 public:
  // Adds `--flag VALUE` to `app` as an override of config key `key`, its help naming the
  // key, its environment variable and its default.
  void Add(CLI::App* app, const std::string& flag, const std::string& key);
  // The flags given on the command line, by key.
  std::map<std::string, ConfigSources::Flag> Given() const;

 private:
  std::map<std::string, ConfigSources::Flag> values_;
};

// One `pdv` subcommand.
class Command {
 public:
  virtual ~Command() = default;
  // Adds the subcommand and its options to `app`; returns it.
  virtual CLI::App* Register(CLI::App& app) = 0;
  // Runs the parsed command with the merged configuration; returns the exit status and
  // prints one line on stderr when it fails.
  virtual int Run(const Config& config, std::stop_token stop) = 0;
  const ConfigFlags& flags() const { return flags_; }

 protected:
  ConfigFlags flags_;
};

std::unique_ptr<Command> MakeGenerateCommand();
std::unique_ptr<Command> MakeCdcCommand();
std::unique_ptr<Command> MakeTransformCommand();
std::unique_ptr<Command> MakeCacheCommand();
std::unique_ptr<Command> MakeServeCommand();
std::unique_ptr<Command> MakeApiKeyCommand();
std::unique_ptr<Command> MakeUpCommand();
std::unique_ptr<Command> MakeDownCommand();
std::unique_ptr<Command> MakeStatusCommand();
std::unique_ptr<Command> MakeMonitorCommand();
std::unique_ptr<Command> MakeReconcileCommand();
std::unique_ptr<Command> MakeGrantCommand();
std::unique_ptr<Command> MakeSubjectCommand();

// The exit status of a command that ended with `done`: 0, or 1 after one line on stderr
// ("pdv cache: redis: cannot connect ...").
int Finish(std::string_view command, const Status& done);

// The structured logger the configuration asks for (log_format, log_level), on stderr.
Logger MakeLogger(const Config& config, const std::string& component);

}  // namespace pdv::cli
