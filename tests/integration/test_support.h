#pragma once

// Helpers shared by the integration tests: running the real `pdv` binary and talking to
// the throw-away servers of localsvc.

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "localsvc/child_process.h"
#include "localsvc/local_redis.h"
#include "localsvc/scratch_dir.h"
#include "pg/connection.h"

namespace pdv::testing {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Path of the pdv binary under test ($PDV_BINARY, set by CTest).
std::string PdvBinary();

// A `pdv` process running in the background, its output going to a file.
class PdvProcess {
 public:
  // `wrapper` runs pdv under another program (e.g. {"prlimit", "--nofile=200:200", "--"}).
  // Standard input reads `stdin_file` ("": /dev/null).
  PdvProcess(const std::vector<std::string>& args, const std::filesystem::path& log,
             const std::vector<std::string>& wrapper = {}, const std::string& stdin_file = "");
  // Waits for the exit; the exit code, or -1 after the timeout (then it is killed).
  int Wait(std::chrono::seconds timeout);
  void Signal(int sig) { child_->Signal(sig); }
  std::string Output() const;
  bool Running() { return child_->Running(); }
  pid_t pid() const { return child_ ? child_->pid() : -1; }

 private:
  std::filesystem::path log_;
  std::optional<localsvc::ChildProcess> child_;
};

// Runs `pdv args...` to completion.
CommandResult RunPdv(const std::vector<std::string>& args,
                     std::chrono::seconds timeout = std::chrono::seconds(120));

// Runs `pdv args...` to completion with `input` on its standard input.
CommandResult RunPdvWithInput(const std::vector<std::string>& args, const std::string& input,
                              std::chrono::seconds timeout = std::chrono::seconds(120));

// Runs any command to completion (60 s at most); its stdout and stderr.
std::string RunCommandOutput(const std::vector<std::string>& argv);

// Connects or fails the test.
pg::Connection Connect(const std::string& url);
// The first column of the first row of `sql`, as text.
std::string Scalar(pg::Connection& conn, const std::string& sql);
int64_t ScalarInt(pg::Connection& conn, const std::string& sql);

std::vector<std::string> Lines(const std::string& text);
std::string ReadFile(const std::filesystem::path& path);

// Sends `raw` (a whole HTTP request) to 127.0.0.1:port and returns everything read
// until the server closes or `timeout` passes.
std::string HttpRaw(int port, const std::string& raw,
                    std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
// The same to host:port (an IPv4 address).
std::string HttpRawTo(const std::string& host, int port, const std::string& raw,
                      std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
// GET http://127.0.0.1:port<path> with an API key (X-API-Key) and Connection: close: the
// whole response.
std::string GetWithKey(int port, const std::string& path, const std::string& key);
// The same to host:port, "" if nothing answers within `timeout`.
std::string GetWithKeyFrom(const std::string& host, int port, const std::string& path,
                           const std::string& key,
                           std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
// The status code of a raw HTTP response (0 if none).
int HttpStatus(const std::string& response);
// The body of a raw HTTP response.
std::string HttpBody(const std::string& response);

// GET http://127.0.0.1:port<path> with Connection: close: the whole response, headers
// included ("" if nothing answers).
std::string HttpGet(int port, const std::string& path);

// marts.dim_clientes_clube as the cache stage reads it (the transform stage's output):
// the contract's fields, plus the RAW position of each customer's state (_lsn) and
// tombstones for deleted customers (_deleted).
void CreateDimensionTable(pg::Connection& conn);

// Polls `condition` every 20 ms until it holds (true) or `timeout` passes (false). Tests
// wait for conditions like this, never for a fixed time.
bool WaitFor(std::chrono::milliseconds timeout, const std::function<bool()>& condition);

// Whether something accepts TCP connections on 127.0.0.1:port.
bool PortAccepts(int port);

// Every customer's latest state rebuilt from RAW (deleted ones gone) equals the OLTP
// table's, and no change is there twice (no customer created twice, none streamed as
// created after a snapshot had it): test failures otherwise.
void ExpectRawEqualsOltp(const std::string& oltp_url, const std::string& warehouse_url);

// HAProxy's `show stat` over its admin socket: whether server `name` of backend "serve"
// is "UP", "DOWN" or "OTHER" ("" when the socket does not answer).
std::string HaproxyServerState(const std::filesystem::path& socket_path, const std::string& name);

// A throw-away certificate authority and a server certificate it signed, for 127.0.0.1
// and localhost (openssl CLI, P-256, valid one day), as PEM files in `dir`.
struct TestCa {
  std::filesystem::path ca_cert, server_cert, server_key;
};
TestCa MakeTestCa(const std::filesystem::path& dir, const std::string& name = "pdv-test-ca");

}  // namespace pdv::testing
