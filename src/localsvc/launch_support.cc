#include "localsvc/launch_support.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/random_secret.h"

namespace pdv::localsvc {
namespace fs = std::filesystem;

Result<fs::path> OpenServerDir(const std::optional<fs::path>& wanted, const std::string& prefix,
                               std::optional<ScratchDir>* scratch) {
  if (wanted) {
    fs::path dir = fs::absolute(*wanted);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return Status::Error(fmt::format("cannot create {}: {}", dir.string(), ec.message()));
    return dir;
  }
  auto made = ScratchDir::Create(prefix);
  if (!made.ok()) return made.status();
  fs::path dir = made->path();
  scratch->emplace(std::move(*made));
  return dir;
}

Result<int> LaunchOnPort(int port, const std::function<Status(int)>& launch) {
  if (port != 0) {
    if (Status s = launch(port); !s.ok()) return s;
    return port;
  }
  Status launched;
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto free_port = FreeLoopbackPort();
    if (!free_port.ok()) return free_port.status();
    launched = launch(*free_port);
    if (launched.ok()) return *free_port;
  }
  return launched;
}

std::string FileTail(const fs::path& file, size_t bytes) {
  std::ifstream in(file);
  std::stringstream all;
  all << in.rdbuf();
  std::string s = all.str();
  return s.size() > bytes ? s.substr(s.size() - bytes) : s;
}

Status WritePrivateFile(const fs::path& file, const std::string& text,
                        const std::optional<RunAs>& owner) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return Status::Error(fmt::format("cannot write {}: {}", file.string(), std::strerror(errno)));
  }
  bool ok = ::fchmod(fd, 0600) == 0 &&
            ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  if (ok && owner) ok = ::fchown(fd, owner->uid, owner->gid) == 0;
  ::close(fd);
  if (!ok) return Status::Error(fmt::format("cannot write {}", file.string()));
  return Status::Ok();
}

Status CheckReachable(const fs::path& dir, const std::optional<RunAs>& run_as,
                      const std::string& account) {
  if (!run_as) return Status::Ok();
  for (fs::path p = fs::absolute(dir).parent_path(); !p.empty(); p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) {
      bool enterable = (st.st_mode & S_IXOTH) ||
                       (st.st_uid == run_as->uid && (st.st_mode & S_IXUSR)) ||
                       (st.st_gid == run_as->gid && (st.st_mode & S_IXGRP));
      if (!enterable) {
        return Status::Error(fmt::format(
            "{} is not reachable by the '{}' account it runs as (as root): {} has mode {:o}; "
            "choose a directory elsewhere (e.g. under /var/lib or /srv)",
            dir.string(), account, p.string(), st.st_mode & 07777));
      }
    }
    if (p == p.root_path()) break;
  }
  return Status::Ok();
}

Result<std::string> PasswordOrRandom(const std::optional<std::string>& given) {
  if (given) return *given;
  return RandomSecretHex(16);
}

Status StopServer(std::optional<ChildProcess>& server, int sig, std::chrono::milliseconds timeout,
                  const std::string& timeout_error) {
  if (!server || !server->Running()) return Status::Ok();
  server->Signal(sig);
  if (!server->Wait(timeout)) {
    server->Kill();
    return Status::Error(timeout_error);
  }
  return Status::Ok();
}

}  // namespace pdv::localsvc
