// Kept in its own file: Beast is expensive to compile.

// clang-format off
#include <utility>  // before any Asio header under C++20 (PLATFORM-NOTES.md)
// clang-format on

#include "metrics/http_exporter.h"

#include <fmt/format.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>

#include "common/accept_errors.h"
#include "common/host_port.h"

namespace pdv::metrics {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

class BeastExporter : public HttpExporter {
 public:
  BeastExporter(const Registry& registry, Logger& log)
      : registry_(registry), log_(log), acceptor_(io_) {}
  ~BeastExporter() override {
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  Status Listen(const std::string& listen) {
    auto hp = ParseHostPort(listen);
    if (!hp.ok()) return Status::Error("metrics: bad listen address: " + hp.message());
    boost::system::error_code ec;
    auto address = asio::ip::make_address(hp->host, ec);
    if (ec)
      return Status::Error(fmt::format("metrics: bad listen address {}: {}", listen, ec.message()));
    tcp::endpoint endpoint(address, static_cast<uint16_t>(hp->port));
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      return Status::Error(fmt::format("metrics: cannot listen on {}: {}", listen, ec.message()));
    Accept();
    thread_ = std::thread([this] { io_.run(); });
    return Status::Ok();
  }

  int port() const override { return acceptor_.local_endpoint().port(); }

 private:
  // A scrape is small: a few connections at a time, each request whole within 10 s.
  static constexpr size_t kMaxConnections = 64;
  static constexpr std::chrono::seconds kRequestTimeout{10};

  struct Session {
    explicit Session(BeastExporter& e, tcp::socket s) : exporter(e), stream(std::move(s)) {
      ++exporter.connections_;
    }
    ~Session() { --exporter.connections_; }
    BeastExporter& exporter;
    boost::beast::tcp_stream stream;
    boost::beast::flat_buffer buffer;
    http::request<http::string_body> request;
    http::response<http::string_body> response;
  };

  void Accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
      if (ec) {
        // Out of descriptors or memory: wait and accept again, never give up.
        uint64_t failures = 0;
        if (errors_.Count(std::chrono::steady_clock::now(), &failures)) {
          log_.Warn("metrics_accept_error",
                    {{"error", ec.message()},
                     {"failures", failures},
                     {"retry_in_ms", static_cast<int64_t>(AcceptErrors::kRetryDelay.count())}});
        }
        retry_.expires_after(AcceptErrors::kRetryDelay);
        retry_.async_wait([this](boost::system::error_code wec) {
          if (!wec) Accept();
        });
        return;
      }
      if (connections_ >= kMaxConnections) {
        boost::system::error_code ignored;
        socket.close(ignored);
      } else {
        Read(std::make_shared<Session>(*this, std::move(socket)));
      }
      Accept();
    });
  }

  void Read(std::shared_ptr<Session> s) {
    s->request = {};
    s->stream.expires_after(kRequestTimeout);
    http::async_read(
        s->stream, s->buffer, s->request, [this, s](boost::system::error_code ec, size_t) {
          if (ec) return;
          bool found = s->request.target() == "/metrics";
          s->response = {found ? http::status::ok : http::status::not_found, s->request.version()};
          s->response.set(http::field::content_type,
                          found ? "text/plain; version=0.0.4" : "text/plain");
          s->response.body() = found ? registry_.Expose() : "not found\n";
          s->response.keep_alive(s->request.keep_alive());
          s->response.prepare_payload();
          s->stream.expires_after(kRequestTimeout);
          http::async_write(s->stream, s->response,
                            [this, s](boost::system::error_code wec, size_t) {
                              if (!wec && s->response.keep_alive()) Read(s);
                            });
        });
  }

  const Registry& registry_;
  Logger& log_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_{io_};
  AcceptErrors errors_;
  size_t connections_ = 0;  // used on the exporter's thread only
  std::thread thread_;
};

}  // namespace

pdv::Result<std::unique_ptr<HttpExporter>> HttpExporter::Start(const std::string& listen,
                                                               const Registry& registry,
                                                               Logger& log) {
  auto exporter = std::make_unique<BeastExporter>(registry, log);
  if (Status s = exporter->Listen(listen); !s.ok()) return s;
  return std::unique_ptr<HttpExporter>(std::move(exporter));
}

}  // namespace pdv::metrics
