#pragma once

// Runs the platform's stages as child processes (`pdv <stage> ...`), restarts one that
// exits with backoff (100 ms doubling to 5 s, reset after 30 s of good running), logs each
// crash, and stops them in a given order.

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/backoff.h"
#include "common/log.h"
#include "common/status.h"
#include "localsvc/child_process.h"

namespace pdv::cli {

// The environment a stage is started with: of `environment` (NAME=value entries), what
// common/child_environment.h's StageMayInherit keeps.
std::vector<std::string> StageEnvironment(char** environment);

struct StageSpec {
  std::string name;               // "cdc"
  std::vector<std::string> argv;  // full command line
  // Arguments used for restarts instead of argv (e.g. without a one-time initial load).
  std::optional<std::vector<std::string>> restart_argv;
};

class Supervisor {
 public:
  Supervisor(std::filesystem::path log_dir, Logger& log)
      : log_dir_(std::move(log_dir)), log_(log) {}
  ~Supervisor() { StopAll({}); }

  Status Start(StageSpec spec);
  // Restarts stages that exited and whose backoff has passed. Call it often.
  void Tick();
  // SIGTERM to each stage in `order` (names; the rest after), waiting up to 10 s each
  // before SIGKILL.
  void StopAll(const std::vector<std::string>& order);
  // The child of `name` (tests and status), or -1.
  pid_t Pid(const std::string& name) const;
  int Restarts(const std::string& name) const;
  std::filesystem::path LogFile(const std::string& name) const {
    return log_dir_ / (name + ".log");
  }

 private:
  struct Stage {
    StageSpec spec;
    std::optional<localsvc::ChildProcess> child;
    std::chrono::steady_clock::time_point started;
    std::optional<std::chrono::steady_clock::time_point> restart_at;
    Backoff backoff;
    int restarts = 0;
  };
  Status Launch(Stage& stage, bool restart);

  std::filesystem::path log_dir_;
  Logger& log_;
  std::vector<Stage> stages_;
};

}  // namespace pdv::cli
