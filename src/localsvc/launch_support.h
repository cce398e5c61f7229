#pragma once

// What starting any local server needs: its directory, a port, its log's last lines.

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "common/status.h"
#include "localsvc/child_process.h"
#include "localsvc/scratch_dir.h"

namespace pdv::localsvc {

// `wanted` (created if missing), or else a new scratch directory "<prefix>-XXXXXX" that
// `*scratch` then owns. Returns the absolute path.
Result<std::filesystem::path> OpenServerDir(const std::optional<std::filesystem::path>& wanted,
                                            const std::string& prefix,
                                            std::optional<ScratchDir>* scratch);

// Runs `launch(port)` on `port`, or, when it is 0, on a free loopback port, trying up to
// three (another process may take a probed port before the server binds it). Returns
// the port the server started on.
Result<int> LaunchOnPort(int port, const std::function<Status(int)>& launch);

// The last `bytes` of a file ("" if unreadable): for start-up errors.
std::string FileTail(const std::filesystem::path& file, size_t bytes);

// Writes `text` to `file` (replacing it; a link is not followed), mode 0600, owned by
// `owner` when set: a server's configuration holding passwords.
Status WritePrivateFile(const std::filesystem::path& file, const std::string& text,
                        const std::optional<RunAs>& owner);

// Whether `run_as` (when set: we are root and it runs as another account, named
// `account` in the error) can enter every directory above `dir` (a checkout under
// /root, mode 0700, cannot).
Status CheckReachable(const std::filesystem::path& dir, const std::optional<RunAs>& run_as,
                      const std::string& account);

// `given`, else a random password (32 hex digits).
Result<std::string> PasswordOrRandom(const std::optional<std::string>& given);

// Stops a server: sends `sig`, waits up to `timeout`, then kills it and returns
// `timeout_error`. Ok when there is no server or it is not running.
Status StopServer(std::optional<ChildProcess>& server, int sig, std::chrono::milliseconds timeout,
                  const std::string& timeout_error);

}  // namespace pdv::localsvc
