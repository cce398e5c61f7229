#include "monitor/http_client.h"

#include "common/host_port.h"

// clang-format off
#include <utility>  // before any Asio header under C++20 (PLATFORM-NOTES.md)
// clang-format on

#include <fmt/format.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
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
  std::optional<asio::ssl::context> tls;  // HTTPS
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
  Status tls_error;

  bool open() const { return plain || secure; }
  void Reset() {
    plain.reset();
    secure.reset();
  }
  beast::tcp_stream& Lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }

  Status Connect() {
    if (!tls_error.ok()) return tls_error;
    if (tls) {
      secure.emplace(io, *tls);
    } else {
      plain.emplace(io);
    }
    Lowest().expires_after(timeout);
    asio::ip::tcp::resolver resolver(io);
    beast::error_code ec;
    auto endpoints = resolver.resolve(host, port, ec);
    if (!ec) Lowest().connect(endpoints, ec);
    if (!ec && secure) {
      boost::system::error_code addr_ec;
      asio::ip::make_address(host, addr_ec);
      if (addr_ec) SSL_set_tlsext_host_name(secure->native_handle(), host.c_str());
      secure->set_verify_callback(asio::ssl::host_name_verification(host));
      secure->handshake(asio::ssl::stream_base::client, ec);
    }
    if (ec) {
      Reset();
      return Status::Error(fmt::format("cannot connect to {}:{}: {}", host, port, ec.message()));
    }
    Lowest().socket().set_option(asio::ip::tcp::no_delay(true));
    buffer.clear();
    return Status::Ok();
  }
};

HttpClient::HttpClient(std::string host_port, int timeout_ms, std::string ca_cert)
    : impl_(std::make_unique<Impl>()) {
  auto hp = ParseHostPort(host_port, 80);
  impl_->host = hp.ok() ? hp->host : host_port;  // a bad address fails at connect
  impl_->port = std::to_string(hp.ok() ? hp->port : 80);
  impl_->timeout = std::chrono::milliseconds(timeout_ms);
  if (!ca_cert.empty()) {
    auto& ctx = impl_->tls.emplace(asio::ssl::context::tls_client);
    ctx.set_options(asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                    asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    ctx.set_verify_mode(asio::ssl::verify_peer);
    boost::system::error_code ec;
    ctx.load_verify_file(ca_cert, ec);
    if (ec) {
      impl_->tls_error = Status::Error(
          fmt::format("cannot load the CA certificate {}: {}", ca_cert, ec.message()));
    }
  }
}

HttpClient::~HttpClient() = default;

Result<HttpResponse> HttpClient::Get(
    const std::string& path, const std::vector<std::pair<std::string, std::string>>& headers) {
  // One retry on a fresh connection: a keep-alive connection the server closed fails once.
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!impl_->open()) {
      if (Status s = impl_->Connect(); !s.ok()) return s;
    }
    http::request<http::empty_body> req{http::verb::get, path, 11};
    req.set(http::field::host, impl_->host);
    for (const auto& [k, v] : headers) req.set(k, v);
    req.keep_alive(true);
    beast::error_code ec;
    impl_->Lowest().expires_after(impl_->timeout);
    http::response<http::string_body> res;
    auto exchange = [&](auto& stream) {
      http::write(stream, req, ec);
      if (!ec) http::read(stream, impl_->buffer, res, ec);
    };
    if (impl_->secure) {
      exchange(*impl_->secure);
    } else {
      exchange(*impl_->plain);
    }
    if (ec) {
      impl_->Reset();
      if (attempt == 0) continue;
      return Status::Error(fmt::format("GET {}: {}", path, ec.message()));
    }
    if (!res.keep_alive()) impl_->Reset();
    return HttpResponse{static_cast<int>(res.result_int()), std::move(res.body())};
  }
  return Status::Error(fmt::format("GET {}: failed", path));
}

}  // namespace pdv::monitor
