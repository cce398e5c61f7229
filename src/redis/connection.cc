#include "redis/connection.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pdv::redis {
namespace {

// A TCP connection to host:port within `timeout` (non-blocking connect, then blocking
// with send and receive timeouts); -1 and `error` set on failure.
int ConnectTcp(const std::string& host, int port, std::chrono::milliseconds timeout,
               std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int gai = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  if (gai != 0) {
    *error = ::gai_strerror(gai);
    return -1;
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, &::freeaddrinfo);
  *error = "no address";
  for (addrinfo* a = found; a; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) {
      *error = std::strerror(errno);
      continue;
    }
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{.fd = fd, .events = POLLOUT, .revents = 0};
      rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
      if (rc == 1) {
        int so_error = 0;
        socklen_t len = sizeof(so_error);
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
        rc = so_error == 0 ? 0 : -1;
        errno = so_error;
      } else {
        if (rc == 0) errno = ETIMEDOUT;
        rc = -1;
      }
    }
    if (rc != 0) {
      *error = std::strerror(errno);
      ::close(fd);
      continue;
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    timeval tv{.tv_sec = timeout.count() / 1000, .tv_usec = (timeout.count() % 1000) * 1000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
  }
  return -1;
}

}  // namespace

void Connection::CloseFd::operator()(int* fd) const {
  if (*fd >= 0) ::close(*fd);
  delete fd;
}

pdv::Result<Connection> Connection::Open(const Endpoint& e, std::chrono::milliseconds timeout,
                                         const std::string& to_host, int to_port) {
  Endpoint target = e;
  if (!to_host.empty()) {
    target.host = to_host;
    target.port = to_port;
  }
  const Endpoint* endpoint = &target;
  Connection client;
  client.where_ = fmt::format("{}:{}", endpoint->host, endpoint->port);
  client.cluster_node_ = endpoint->cluster;
  client.reader_ = std::make_unique<ReplyReader>();
  std::string error;
  int fd = ConnectTcp(endpoint->host, endpoint->port, timeout, &error);
  if (fd < 0) {
    return Status::Error(fmt::format("redis: cannot connect to {}: {}", client.where_, error),
                         kConnectionError);
  }
  client.fd_.reset(new int(fd));
  if (endpoint->tls) {
    auto ctx = MakeClientTlsContext(*endpoint);
    if (!ctx.ok()) return ctx.status();
    client.tls_context_ = std::move(*ctx);
    client.ssl_.reset(SSL_new(client.tls_context_.get()));
    if (!client.ssl_) return Status::Error("redis: cannot start TLS: " + OpenSslErrors());
    if (Status s = ExpectServerName(client.ssl_.get(), *endpoint); !s.ok()) return s;
    SSL_set_fd(client.ssl_.get(), fd);
    if (SSL_connect(client.ssl_.get()) != 1) {
      long verify = SSL_get_verify_result(client.ssl_.get());
      std::string why =
          verify != X509_V_OK ? X509_verify_cert_error_string(verify) : OpenSslErrors();
      return Status::Error(
          fmt::format("redis: TLS handshake with {} failed: {}", client.where_, why),
          kConnectionError);
    }
  }
  if (auto auth = AuthCommand(*endpoint); !auth.empty()) {
    auto r = client.Command(auth);
    if (!r.ok()) return r.status();
  }
  if (endpoint->db != 0 && !endpoint->cluster) {
    auto r = client.Command({"SELECT", std::to_string(endpoint->db)});
    if (!r.ok()) return r.status();
  }
  return client;
}

Status Connection::Broken(std::string what) {
  broken_ = Status::Error(fmt::format("redis: {} ({})", what, where_), kConnectionError);
  return broken_;
}

void Connection::Append(const std::vector<std::string_view>& args) { out_ += FormatCommand(args); }

Status Connection::Flush() {
  size_t sent = 0;
  while (sent < out_.size()) {
    const char* p = out_.data() + sent;
    size_t left = out_.size() - sent;
    ssize_t n;
    if (ssl_) {
      n = SSL_write(ssl_.get(), p, static_cast<int>(std::min<size_t>(left, 1 << 30)));
      if (n <= 0) return Broken("write failed: " + OpenSslErrors());
    } else {
      n = ::send(*fd_, p, left, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        return Broken(errno == EAGAIN ? "write timed out"
                                      : std::string("write failed: ") + std::strerror(errno));
      }
    }
    sent += static_cast<size_t>(n);
  }
  out_.clear();
  return Status::Ok();
}

pdv::Result<Reply> Connection::GetReply() {
  if (!broken_.ok()) return broken_;
  if (!out_.empty()) {
    if (Status s = Flush(); !s.ok()) return s;
  }
  char buf[16384];
  while (true) {
    auto next = reader_->Next();
    if (!next.ok()) return Broken("protocol error");
    if (*next) {
      Reply reply(next->release());
      if (reply.type() == REDIS_REPLY_ERROR) {
        return ErrorReply(reply.str(), where_, cluster_node_);
      }
      return reply;
    }
    ssize_t n;
    if (ssl_) {
      n = SSL_read(ssl_.get(), buf, sizeof(buf));
      if (n <= 0) {
        int err = SSL_get_error(ssl_.get(), static_cast<int>(n));
        if (err == SSL_ERROR_ZERO_RETURN) return Broken("connection closed");
        return Broken(errno == EAGAIN ? "read timed out" : "read failed: " + OpenSslErrors());
      }
    } else {
      n = ::recv(*fd_, buf, sizeof(buf), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) return Broken("connection closed");
      if (n < 0) {
        return Broken(errno == EAGAIN ? "read timed out"
                                      : std::string("read failed: ") + std::strerror(errno));
      }
    }
    reader_->Feed(buf, static_cast<size_t>(n));
  }
}

pdv::Result<Reply> Connection::Command(const std::vector<std::string_view>& args) {
  Append(args);
  return GetReply();
}

}  // namespace pdv::redis
