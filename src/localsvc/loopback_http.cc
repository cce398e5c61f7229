#include "localsvc/loopback_http.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/unique_fd.h"

namespace pdv::localsvc {

Result<HttpReply> LoopbackHttp(int port, std::string_view method, std::string_view path,
                               std::string_view body, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return Status::Error(fmt::format("socket: {}", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  std::string where = fmt::format("http://127.0.0.1:{}{}", port, path);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 &&
      errno != EINPROGRESS) {
    return Status::Error(fmt::format("{}: {}", where, std::strerror(errno)));
  }
  // Waits for `events` until the deadline; false when it passed.
  auto wait = [&](short events) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{.fd = fd.get(), .events = events, .revents = 0};
    return ::poll(&p, 1, static_cast<int>(left.count())) > 0;
  };
  std::string request = fmt::format(
      "{} {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n{}Content-Length: "
      "{}\r\n\r\n{}",
      method, path, port, body.empty() ? "" : "Content-Type: application/json\r\n", body.size(),
      body);
  size_t sent = 0;
  while (sent < request.size()) {
    if (!wait(POLLOUT)) return Status::Error(fmt::format("{}: no answer", where));
    ssize_t n = ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return Status::Error(fmt::format("{}: {}", where, std::strerror(errno)));
    }
    if (n > 0) sent += static_cast<size_t>(n);
  }
  std::string reply;
  char buf[4096];
  while (true) {
    if (!wait(POLLIN)) return Status::Error(fmt::format("{}: no (whole) answer", where));
    ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return Status::Error(fmt::format("{}: {}", where, std::strerror(errno)));
    }
    reply.append(buf, static_cast<size_t>(n));
  }
  // "HTTP/1.x NNN ..."; the body after the blank line. Patroni and etcd send whole bodies
  // (Content-Length) or chunks; de-chunking is not needed for the JSON they send on close.
  if (reply.rfind("HTTP/1.", 0) != 0 || reply.size() < 12) {
    return Status::Error(fmt::format("{}: not an HTTP reply", where));
  }
  HttpReply out;
  out.status = std::atoi(reply.c_str() + 9);
  if (auto end = reply.find("\r\n\r\n"); end != std::string::npos) out.body = reply.substr(end + 4);
  return out;
}

}  // namespace pdv::localsvc
