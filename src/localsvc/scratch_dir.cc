#include "localsvc/scratch_dir.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

namespace pdv::localsvc {
namespace fs = std::filesystem;

bool LoopbackPortFree(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

Result<int> FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Error(fmt::format("socket: {}", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return Status::Error(fmt::format("cannot find a free port: {}", std::strerror(errno)));
  }
  ::close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

namespace {

void SweepStale(const std::string& prefix) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(fs::temp_directory_path(), ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind(prefix + "-", 0) != 0) continue;
    std::ifstream owner(entry.path() / "owner.pid");
    pid_t pid = 0;
    if (!(owner >> pid) || pid <= 0) continue;
    if (::kill(pid, 0) != 0 && errno == ESRCH) fs::remove_all(entry.path(), ec);
  }
}

}  // namespace

Result<ScratchDir> ScratchDir::Create(const std::string& prefix) {
  SweepStale(prefix);
  std::string templ = (fs::temp_directory_path() / (prefix + "-XXXXXX")).string();
  if (::mkdtemp(templ.data()) == nullptr) {
    return Status::Error(fmt::format("cannot create {}: {}", templ, std::strerror(errno)));
  }
  ScratchDir dir{fs::path(templ)};
  std::ofstream(dir.path_ / "owner.pid") << ::getpid() << "\n";
  // Servers running as another user must be able to enter it.
  fs::permissions(dir.path_, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  return dir;
}

ScratchDir::~ScratchDir() {
  if (path_.empty()) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
}

Result<std::optional<RunAs>> ServerAccount(const std::string& name) {
  if (::geteuid() != 0) return std::optional<RunAs>();
  passwd* pw = ::getpwnam(name.c_str());
  if (pw == nullptr) {
    return Status::Error(fmt::format(
        "running as root, but there is no '{}' user to run that server as (a server of ours "
        "never runs as root): install its Debian package, or run as a normal user",
        name));
  }
  return std::optional<RunAs>(RunAs{pw->pw_uid, pw->pw_gid});
}

Status GiveTo(const fs::path& path, const std::optional<RunAs>& who) {
  if (!who) return Status::Ok();
  auto chown_one = [&](const fs::path& p) { return ::lchown(p.c_str(), who->uid, who->gid) == 0; };
  if (!chown_one(path)) {
    return Status::Error(fmt::format("chown {}: {}", path.string(), std::strerror(errno)));
  }
  std::error_code ec;
  if (fs::is_directory(path)) {
    for (const auto& e : fs::recursive_directory_iterator(path, ec)) {
      if (!chown_one(e.path())) {
        return Status::Error(fmt::format("chown {}: {}", e.path().string(), std::strerror(errno)));
      }
    }
  }
  return Status::Ok();
}

}  // namespace pdv::localsvc
