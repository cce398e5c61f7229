#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>

#include "common/status.h"

namespace pdv::localsvc {

// A free TCP port on 127.0.0.1 (the OS picks it; a race with another process taking it
// before we bind is possible, so callers retry on "address in use").
Result<int> FreeLoopbackPort();
// Whether `port` on 127.0.0.1 can be bound now (a port in TIME_WAIT counts as free).
bool LoopbackPortFree(int port);

// A fresh directory under the system temp dir ("<prefix>-XXXXXX") that remembers the
// pid that made it, removed on destruction. Making one first removes directories with
// the same prefix whose maker is dead (a test killed by SIGKILL leaves them behind).
// Move-only.
class ScratchDir {
 public:
  static Result<ScratchDir> Create(const std::string& prefix);
  ScratchDir(ScratchDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  ScratchDir& operator=(ScratchDir&&) = delete;
  ~ScratchDir();
  const std::filesystem::path& path() const { return path_; }

 private:
  explicit ScratchDir(std::filesystem::path path) : path_(std::move(path)) {}
  std::filesystem::path path_;
};

// The unprivileged account a server runs as when we are root (each server its own:
// "postgres", "redis"); nullopt when we are not root (servers then run as us).
struct RunAs {
  uid_t uid;
  gid_t gid;
};
Result<std::optional<RunAs>> ServerAccount(const std::string& name = "postgres");

// chown -R to `who` (no-op for nullopt).
Status GiveTo(const std::filesystem::path& path, const std::optional<RunAs>& who);

}  // namespace pdv::localsvc
