#include "bench/terminal_load.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <thread>

#include "bench/bench_support.h"
#include "common/fd_limit.h"

namespace pdv::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// One connection's state during a run.
struct Line {
  std::deque<Clock::time_point> due;  // scheduled, not sent yet (the one in flight waits)
  Clock::time_point in_flight{};      // the schedule of the request sent, if any
  bool busy = false;
  bool closed = false;
  std::string got;
  size_t need = 0;  // bytes of the whole answer, once its head is in
};

// The length of the answer in `got` once its head is complete (0 before).
size_t AnswerLength(const std::string& got) {
  auto head = got.find("\r\n\r\n");
  if (head == std::string::npos) return 0;
  size_t length = 0;
  auto at = got.find("Content-Length: ");
  if (at != std::string::npos && at < head) length = std::stoul(got.substr(at + 16));
  return head + 4 + length;
}

}  // namespace

Terminals::Terminals(int port, int connections) {
  FdLimit limit = RaiseFdLimit();
  if (limit.soft < static_cast<uint64_t>(connections) + 64) {
    Die(fmt::format("{} connections need {} open files; this process may have {}", connections,
                    connections + 64, limit.soft));
  }
  epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
  sockaddr_in a{.sin_family = AF_INET,
                .sin_port = htons(static_cast<uint16_t>(port)),
                .sin_addr = {htonl(INADDR_LOOPBACK)}};
  // Opened in waves, so that the server's accept queue is never overrun (a dropped SYN
  // waits a whole second to be sent again).
  auto deadline = Clock::now() + 60s;
  while (size() < connections) {
    if (Clock::now() > deadline) Die(fmt::format("only {} connections opened", size()));
    int wave = std::min(connections - size(), 500);
    for (int i = 0; i < wave; ++i) {
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) Die(fmt::format("socket: {}", std::strerror(errno)));
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
        Die(fmt::format("connect: {}", std::strerror(errno)));
      }
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
      epoll_event ev{.events = EPOLLIN | EPOLLRDHUP,
                     .data = {.u32 = static_cast<uint32_t>(size())}};
      ::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
      fds_.push_back(fd);
    }
  }
}

Terminals::~Terminals() {
  for (int fd : fds_) ::close(fd);
  if (epoll_ >= 0) ::close(epoll_);
}

TerminalRun Terminals::Run(const std::vector<std::string>& requests, double rate, int seconds) {
  TerminalRun out;
  std::vector<Line> lines(fds_.size());
  auto start = Clock::now() + 100ms;
  auto end = start + std::chrono::seconds(seconds);
  const auto step = std::chrono::duration<double>(1.0 / rate);
  int64_t next_k = 0;
  int64_t outstanding = 0;  // scheduled and not answered, on open connections
  auto close_line = [&](size_t c) {
    Line& line = lines[c];
    line.closed = true;
    ++out.closed;
    int64_t lost = static_cast<int64_t>(line.due.size()) + (line.busy ? 1 : 0);
    out.unanswered += lost;
    outstanding -= lost;
    line.due.clear();
    line.busy = false;
    ::epoll_ctl(epoll_, EPOLL_CTL_DEL, fds_[c], nullptr);
  };
  auto due_at = [&](int64_t k) {
    return start + std::chrono::duration_cast<Clock::duration>(step * static_cast<double>(k));
  };
  auto send_next = [&](size_t c) {
    Line& line = lines[c];
    if (line.busy || line.closed || line.due.empty()) return;
    const std::string& req = requests[static_cast<size_t>(out.sent) % requests.size()];
    if (::send(fds_[c], req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
      return close_line(c);
    }
    ++out.sent;
    line.busy = true;
    line.in_flight = line.due.front();
    line.due.pop_front();
  };
  std::vector<epoll_event> events(1024);
  char buf[16384];
  auto drain_until = end + 5s;
  while (true) {
    auto now = Clock::now();
    // Everything scheduled by now is due on its connection.
    for (; now < end && due_at(next_k) <= now; ++next_k) {
      size_t c = static_cast<size_t>(next_k) % lines.size();
      if (lines[c].closed) {
        ++out.unanswered;
        continue;
      }
      lines[c].due.push_back(due_at(next_k));
      ++outstanding;
      send_next(c);
    }
    if (now >= end && (outstanding == 0 || now >= drain_until)) break;
    auto wake = now < end ? due_at(next_k) : drain_until;
    auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(wake - now);
    timespec ts{.tv_sec = wait.count() / 1'000'000'000, .tv_nsec = wait.count() % 1'000'000'000};
    if (wait.count() < 0) ts = {};
    int n = ::epoll_pwait2(epoll_, events.data(), static_cast<int>(events.size()), &ts, nullptr);
    for (int i = 0; i < n; ++i) {
      size_t c = events[static_cast<size_t>(i)].data.u32;
      Line& line = lines[c];
      while (!line.closed) {
        ssize_t got = ::recv(fds_[c], buf, sizeof(buf), 0);
        if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
          close_line(c);
          break;
        }
        if (got < 0) break;
        line.got.append(buf, static_cast<size_t>(got));
        while (true) {
          if (line.need == 0) line.need = AnswerLength(line.got);
          if (line.need == 0 || line.got.size() < line.need) break;
          auto answered = Clock::now();
          if (line.got.compare(0, 12, "HTTP/1.1 200") != 0) ++out.not_ok;
          out.latencies_ms.push_back(
              std::chrono::duration<double, std::milli>(answered - line.in_flight).count());
          line.got.erase(0, line.need);
          line.need = 0;
          line.busy = false;
          --outstanding;
          send_next(c);
        }
      }
    }
  }
  out.unanswered += outstanding;
  return out;
}

}  // namespace pdv::bench
