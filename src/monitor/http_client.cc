#include "monitor/http_client.h"

#include "common/host_port.h"

// clang-format off
#include <utility>  // before any Asio header under C++20 (PLATFORM-NOTES.md)
// clang-format on

#include <fmt/format.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <optional>

namespace pdv::monitor {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

struct HttpClient::Impl {
  std::string host, port;
  std::chrono::milliseconds timeout;
  asio::io_context io;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;

  Status Connect() {
    stream.emplace(io);
    stream->expires_after(timeout);
    asio::ip::tcp::resolver resolver(io);
    beast::error_code ec;
    auto endpoints = resolver.resolve(host, port, ec);
    if (!ec) stream->connect(endpoints, ec);
    if (ec) {
      stream.reset();
      return Status::Error(fmt::format("cannot connect to {}:{}: {}", host, port, ec.message()));
    }
    stream->socket().set_option(asio::ip::tcp::no_delay(true));
    buffer.clear();
    return Status::Ok();
  }
};

HttpClient::HttpClient(std::string host_port, int timeout_ms) : impl_(std::make_unique<Impl>()) {
  auto hp = ParseHostPort(host_port, 80);
  impl_->host = hp.ok() ? hp->host : host_port;  // a bad address fails at connect
  impl_->port = std::to_string(hp.ok() ? hp->port : 80);
  impl_->timeout = std::chrono::milliseconds(timeout_ms);
}

HttpClient::~HttpClient() = default;

Result<HttpResponse> HttpClient::Get(
    const std::string& path, const std::vector<std::pair<std::string, std::string>>& headers) {
  // One retry on a fresh connection: a keep-alive connection the server closed fails once.
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!impl_->stream) {
      if (Status s = impl_->Connect(); !s.ok()) return s;
    }
    http::request<http::empty_body> req{http::verb::get, path, 11};
    req.set(http::field::host, impl_->host);
    for (const auto& [k, v] : headers) req.set(k, v);
    req.keep_alive(true);
    beast::error_code ec;
    impl_->stream->expires_after(impl_->timeout);
    http::write(*impl_->stream, req, ec);
    http::response<http::string_body> res;
    if (!ec) http::read(*impl_->stream, impl_->buffer, res, ec);
    if (ec) {
      impl_->stream.reset();
      if (attempt == 0) continue;
      return Status::Error(fmt::format("GET {}: {}", path, ec.message()));
    }
    if (!res.keep_alive()) impl_->stream.reset();
    return HttpResponse{static_cast<int>(res.result_int()), std::move(res.body())};
  }
  return Status::Error(fmt::format("GET {}: failed", path));
}

}  // namespace pdv::monitor
