#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace pdv::localsvc {

struct SpawnOptions {
  std::vector<std::string> argv = {};  // argv[0] is looked up in PATH
  // Run as this user (only when we are root): PostgreSQL refuses to run as root.
  std::optional<uid_t> uid = {};
  std::optional<gid_t> gid = {};
  // stdout and stderr are appended to this file ("" keeps ours).
  std::string log_file = {};
  // stdin reads this file ("": /dev/null).
  std::string stdin_file = {};
  // The child's whole environment ("NAME=value" each), or unset: ours. Set it to keep
  // secrets the child does not need out of it (common/child_environment.h).
  std::optional<std::vector<std::string>> env = {};
  // Signal the child gets when the thread that spawned it dies, however it dies
  // (SIGKILL included), so no server outlives a crashed test or supervisor. 0: none.
  int parent_death_signal = 0;
};

// A child process, killed (SIGKILL) and reaped on destruction if still running.
// Move-only; not thread-safe.
class ChildProcess {
 public:
  static Result<ChildProcess> Spawn(const SpawnOptions& options);
  ChildProcess(ChildProcess&& other) noexcept : pid_(other.pid_), exit_code_(other.exit_code_) {
    other.pid_ = -1;
  }
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  // Not yet exited (reaps it if it has).
  bool Running();
  void Signal(int sig);
  // Waits up to `timeout` for the exit; the exit code (128+signal when signalled), or
  // nullopt if it is still running.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  // SIGKILL and reap.
  void Kill();

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// Runs a command to completion; error names the command, its exit code, and the tail
// of its output.
Status RunCommand(const SpawnOptions& options, std::chrono::seconds timeout);

}  // namespace pdv::localsvc
