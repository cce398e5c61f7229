#pragma once

// Many registers at once: thousands of keep-alive connections, each sending its share of
// a fixed schedule (open loop: latency counts from the scheduled instant, so a slow
// answer delays no later request's clock). One thread and epoll, so that 10,000
// connections cost 10,000 sockets and not 10,000 threads.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace pdv::bench {

struct TerminalRun {
  std::vector<double> latencies_ms;  // of answered requests
  int64_t sent = 0;
  int64_t not_ok = 0;      // answers other than 200
  int64_t unanswered = 0;  // no answer by the end (connection closed, or still waiting)
  int64_t closed = 0;      // connections the server closed
};

class Terminals {
 public:
  // Opens `connections` connections to 127.0.0.1:port (raising this process's open-file
  // limit as far as it goes); dies if they cannot all be opened within a minute.
  Terminals(int port, int connections);
  ~Terminals();
  Terminals(const Terminals&) = delete;
  Terminals& operator=(const Terminals&) = delete;

  int size() const { return static_cast<int>(fds_.size()); }
  // Request k of the schedule (k / rate seconds after the start) goes on connection
  // k % size(), and is requests[k % requests.size()]: whole HTTP/1.1 requests.
  TerminalRun Run(const std::vector<std::string>& requests, double rate, int seconds);

 private:
  int epoll_ = -1;
  std::vector<int> fds_;
};

}  // namespace pdv::bench
