#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"
#include "localsvc/child_process.h"
#include "localsvc/scratch_dir.h"

namespace pdv::localsvc {

struct LocalRedisOptions {
  // Where the server keeps its files (and, with `persistent`, its data). Unset: a
  // scratch directory removed when it stops.
  std::optional<std::filesystem::path> dir;
  int port = 0;             // 0: a free loopback port
  bool persistent = false;  // append-only file on, else nothing written to disk
};

// A redis-server of our own on 127.0.0.1, dying with the thread that started it.
// Not thread-safe.
class LocalRedis {
 public:
  static Result<std::unique_ptr<LocalRedis>> Start(LocalRedisOptions options);
  ~LocalRedis();

  std::string Url() const;
  int port() const { return port_; }
  Status Stop();
  // Starts it again after Stop (or after it was killed), on the same port.
  Status Restart();
  // SIGKILL, for fault tests.
  void Kill();

 private:
  LocalRedis() = default;
  Status Launch();

  LocalRedisOptions options_;
  std::optional<ScratchDir> scratch_;
  std::filesystem::path dir_;
  std::optional<ChildProcess> server_;
  int port_ = 0;
};

}  // namespace pdv::localsvc
