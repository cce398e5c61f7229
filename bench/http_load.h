#pragma once

// HTTP load for the benchmarks: wrk runs (closed loop), a fixed-schedule client (open
// loop, no coordinated omission), and single requests.

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace pdv::bench {

struct WrkResult {
  double rps = 0, p50_ms = 0, p99_ms = 0;
  double requests = 0;  // answered in the run
  std::string errors;   // wrk's count of non-2xx/3xx answers ("" if none)
};

// wrk -t1 -c<connections> -d<seconds>s --latency -s <script> <url>; its output is kept in
// <dir>/<name>.wrk.
WrkResult Wrk(const std::string& url, const std::filesystem::path& script, int seconds,
              const std::filesystem::path& dir, const std::string& name, int connections = 32);

// Until something accepts connections on 127.0.0.1:port (dies after 15 s).
void WaitHttp(int port);

// Open loop: each of `connections` keep-alive connections sends `requests` (whole HTTP
// requests, in turn) on a fixed schedule adding up to `rate` per second for `seconds`;
// latency counts from the scheduled instant. The latencies in ms.
std::vector<double> FixedRate(int port, const std::vector<std::string>& requests, double rate,
                              int connections, int seconds);

// One request with Connection: close to host:port; the status code (0: no answer within
// `timeout`).
int GetStatus(const std::string& host, int port, const std::string& path,
              const std::string& api_key, std::chrono::milliseconds timeout);

}  // namespace pdv::bench
