#include "bench/http_load.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <thread>

#include "bench/bench_support.h"
#include "localsvc/child_process.h"

namespace pdv::bench {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

double ToMs(const std::string& v, const std::string& unit) {
  double x = std::stod(v);
  if (unit == "us") return x / 1000;
  if (unit == "s") return x * 1000;
  return x;
}

}  // namespace

WrkResult Wrk(const std::string& url, const fs::path& script, int seconds, const fs::path& dir,
              const std::string& name, int connections) {
  fs::path out = dir / (name + ".wrk");
  auto s = pdv::localsvc::RunCommand(
      {.argv = {"wrk", "-t1", fmt::format("-c{}", connections), fmt::format("-d{}s", seconds),
                "--latency", "-s", script.string(), url},
       .log_file = out.string()},
      std::chrono::seconds(seconds + 30));
  Must(s, "wrk");
  std::ifstream in(out);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  WrkResult r;
  std::smatch m;
  if (std::regex_search(text, m, std::regex(R"(Requests/sec:\s+([\d.]+))")))
    r.rps = std::stod(m[1]);
  if (std::regex_search(text, m, std::regex(R"((\d+) requests in)"))) r.requests = std::stod(m[1]);
  if (std::regex_search(text, m, std::regex(R"(50%\s+([\d.]+)(us|ms|s))")))
    r.p50_ms = ToMs(m[1], m[2]);
  if (std::regex_search(text, m, std::regex(R"(99%\s+([\d.]+)(us|ms|s))")))
    r.p99_ms = ToMs(m[1], m[2]);
  if (std::regex_search(text, m, std::regex(R"(Non-2xx or 3xx responses: (\d+))"))) r.errors = m[1];
  return r;
}

void WaitHttp(int port) {
  for (int i = 0; i < 300; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{.sin_family = AF_INET,
                  .sin_port = htons(static_cast<uint16_t>(port)),
                  .sin_addr = {htonl(INADDR_LOOPBACK)}};
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    ::close(fd);
    if (ok) return;
    std::this_thread::sleep_for(50ms);
  }
  Die(fmt::format("nothing listens on port {}", port));
}

std::vector<double> FixedRate(int port, const std::vector<std::string>& requests, double rate,
                              int connections, int seconds) {
  std::vector<std::vector<double>> per(static_cast<size_t>(connections));
  std::vector<std::thread> threads;
  auto start = Clock::now() + 200ms;
  auto interval = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(connections / rate));
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&, c] {
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      sockaddr_in a{.sin_family = AF_INET,
                    .sin_port = htons(static_cast<uint16_t>(port)),
                    .sin_addr = {htonl(INADDR_LOOPBACK)}};
      if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return;
      auto next = start + interval * c / connections;
      auto end = start + std::chrono::seconds(seconds);
      char buf[8192];
      for (size_t i = static_cast<size_t>(c); next < end;
           i += static_cast<size_t>(connections), next += interval) {
        std::this_thread::sleep_until(next);
        const std::string& req = requests[i % requests.size()];
        if (::send(fd, req.data(), req.size(), 0) < 0) break;
        std::string got;
        size_t need = 0;
        while (true) {
          ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
          if (n <= 0) break;
          got.append(buf, static_cast<size_t>(n));
          auto head = got.find("\r\n\r\n");
          if (head != std::string::npos && need == 0) {
            auto cl = got.find("Content-Length: ");
            need = head + 4 + std::stoul(got.substr(cl + 16));
          }
          if (need && got.size() >= need) break;
        }
        per[static_cast<size_t>(c)].push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - next).count());
      }
      ::close(fd);
    });
  }
  for (auto& t : threads) t.join();
  std::vector<double> all;
  for (auto& v : per) all.insert(all.end(), v.begin(), v.end());
  return all;
}

int GetStatus(const std::string& host, int port, const std::string& path,
              const std::string& api_key, std::chrono::milliseconds timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host.c_str(), &a.sin_addr);
  timeval tv{.tv_sec = timeout.count() / 1000, .tv_usec = (timeout.count() % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  std::string got;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    std::string req = fmt::format(
        "GET {} HTTP/1.1\r\nHost: b\r\nX-API-Key: {}\r\nConnection: close\r\n\r\n", path, api_key);
    ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    char buf[4096];
    for (ssize_t n; got.size() < 12 && (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;)
      got.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (got.rfind("HTTP/1.1 ", 0) != 0 || got.size() < 12) return 0;
  return std::stoi(got.substr(9, 3));
}

}  // namespace pdv::bench
