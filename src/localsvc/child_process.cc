#include "localsvc/child_process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "localsvc/launch_support.h"

namespace pdv::localsvc {

Result<ChildProcess> ChildProcess::Spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return Status::Error("spawn: empty command");
  // Everything the child needs is prepared before fork: after it, only
  // async-signal-safe calls.
  std::vector<char*> argv;
  for (const auto& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  if (options.env) {
    for (const auto& e : *options.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
  }
  int log_fd = -1;
  if (!options.log_file.empty()) {
    // Owner-only: a server's log can hold what its clients sent.
    log_fd = ::open(options.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) {
      return Status::Error(fmt::format("spawn {}: cannot open log {}: {}", options.argv[0],
                                       options.log_file, std::strerror(errno)));
    }
    if (options.uid && ::fchown(log_fd, *options.uid, options.gid.value_or(-1)) != 0) {
      ::close(log_fd);
      return Status::Error(fmt::format("spawn: cannot chown {}", options.log_file));
    }
  }
  int stdin_fd = ::open(options.stdin_file.empty() ? "/dev/null" : options.stdin_file.c_str(),
                        O_RDONLY | O_CLOEXEC);
  if (stdin_fd < 0) {
    if (log_fd >= 0) ::close(log_fd);
    return Status::Error(fmt::format("spawn {}: cannot open {}: {}", options.argv[0],
                                     options.stdin_file, std::strerror(errno)));
  }
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    if (log_fd >= 0) ::close(log_fd);
    ::close(stdin_fd);
    return Status::Error(
        fmt::format("spawn {}: fork failed: {}", options.argv[0], std::strerror(errno)));
  }
  if (pid == 0) {
    ::setpgid(0, 0);  // its own group: a Ctrl-C meant for us is not delivered twice
    if (log_fd >= 0) {
      ::dup2(log_fd, STDOUT_FILENO);
      ::dup2(log_fd, STDERR_FILENO);
    }
    ::dup2(stdin_fd, STDIN_FILENO);
    // Dropping to another account drops root's supplementary groups too: only the
    // target group stays (setgroups before setgid/setuid, while still allowed).
    if (options.uid || options.gid) {
      gid_t only = options.gid ? *options.gid : ::getgid();
      if (::setgroups(1, &only) != 0) ::_exit(126);
    }
    if (options.gid && ::setgid(*options.gid) != 0) ::_exit(126);
    if (options.uid && ::setuid(*options.uid) != 0) ::_exit(126);
    // After setuid: a credential change clears the parent-death signal.
    if (options.parent_death_signal != 0) {
      ::prctl(PR_SET_PDEATHSIG, options.parent_death_signal);
      if (::getppid() != parent) ::_exit(125);  // the parent died before prctl
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (options.env) {
      ::execvpe(argv[0], argv.data(), envp.data());
    } else {
      ::execvp(argv[0], argv.data());
    }
    ::_exit(127);
  }
  if (log_fd >= 0) ::close(log_fd);
  ::close(stdin_fd);
  return ChildProcess(pid);
}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    Kill();
    pid_ = other.pid_;
    exit_code_ = other.exit_code_;
    other.pid_ = -1;
  }
  return *this;
}

ChildProcess::~ChildProcess() { Kill(); }

bool ChildProcess::Running() {
  if (pid_ <= 0 || exit_code_) return false;
  return !Wait(std::chrono::milliseconds(0)).has_value();
}

void ChildProcess::Signal(int sig) {
  if (pid_ > 0 && !exit_code_) ::kill(pid_, sig);
}

std::optional<int> ChildProcess::Wait(std::chrono::milliseconds timeout) {
  if (exit_code_) return exit_code_;
  if (pid_ <= 0) return -1;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return exit_code_;
    }
    if (r < 0 && errno != EINTR) {
      exit_code_ = -1;
      return exit_code_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void ChildProcess::Kill() {
  if (pid_ <= 0 || exit_code_) return;
  ::kill(pid_, SIGKILL);
  Wait(std::chrono::seconds(10));
}

Status RunCommand(const SpawnOptions& options, std::chrono::seconds timeout) {
  auto child = ChildProcess::Spawn(options);
  if (!child.ok()) return child.status();
  auto code = child->Wait(timeout);
  if (code && *code == 0) return Status::Ok();
  std::string tail = options.log_file.empty() ? "" : FileTail(options.log_file, 600);
  std::string cmd = fmt::format("{}", fmt::join(options.argv, " "));
  if (!code) return Status::Error(fmt::format("{}: timed out after {}s", cmd, timeout.count()));
  return Status::Error(
      fmt::format("{}: exit code {}{}{}", cmd, *code, tail.empty() ? "" : ": ", tail));
}

}  // namespace pdv::localsvc
