// `pdv serve` (serve.h): checks the options, makes sure the port is free, loads the TLS
// context, starts one Worker per event loop on the shared port, logs the start line with
// the limits in force, and stops the loops on request.

// clang-format off
#include <utility>  // before any Asio header under C++20 (PLATFORM-NOTES.md)
// clang-format on

#include "api/serve.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/ssl.hpp>
#include <memory>
#include <thread>
#include <vector>

#include "api/shared_state.h"
#include "api/worker.h"
#include "common/fd_limit.h"
#include "common/host_port.h"
#include "common/redis_url.h"

namespace pdv::api {
namespace {

// The certificate chain and private key of `options` into `ctx`, TLS 1.2 and later only;
// fails naming the file that could not be used.
Status LoadTls(const ServeOptions& options, asio::ssl::context& ctx) {
  ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                  asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                  asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
  boost::system::error_code tls_ec;
  ctx.use_certificate_chain_file(options.tls_cert, tls_ec);
  if (tls_ec) {
    return Status::Error(fmt::format("serve: cannot use the certificate {}: {}", options.tls_cert,
                                     tls_ec.message()));
  }
  ctx.use_private_key_file(options.tls_key, asio::ssl::context::pem, tls_ec);
  if (tls_ec) {
    return Status::Error(
        fmt::format("serve: cannot use the private key {}: {}", options.tls_key, tls_ec.message()));
  }
  return Status::Ok();
}

}  // namespace

Status Serve(const ServeOptions& options, Logger& log, std::stop_token stop) {
  if (options.cpf_key.size() < 16) return Status::Error("serve: cpf_key is not set");
  // A bad configuration is said before anything is bound.
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return Status::Error("serve: HTTPS needs both --tls-cert and --tls-key");
  }
  auto endpoint = redis::ParseRedisUrl(options.redis_url);
  if (!endpoint.ok()) return endpoint.status();
  auto hp = ParseHostPort(options.listen);
  if (!hp.ok()) return Status::Error("serve: bad listen address: " + hp.message());
  boost::system::error_code ec;
  auto address = asio::ip::make_address(hp->host, ec);
  if (ec) return Status::Error(fmt::format("serve: bad listen address {}", options.listen));
  tcp::endpoint listen(address, static_cast<uint16_t>(hp->port));

  // The loops share the port through SO_REUSEPORT, which would also let a second server
  // of the same user share it silently: first make sure nobody holds it.
  if (listen.port() != 0) {
    asio::io_context probe_io;
    tcp::acceptor probe(probe_io);
    boost::system::error_code pec;
    OpenAndBind(probe, listen, /*share_port=*/false, pec);
    if (pec) {
      return Status::Error(
          fmt::format("serve: cannot listen on {}: {}", options.listen, pec.message()));
    }
  }

  int threads = options.threads > 0
                    ? options.threads
                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  SharedState shared(options, log, threads);
  if (!options.tls_cert.empty()) {
    if (Status s = LoadTls(options, shared.tls.emplace(asio::ssl::context::tls_server)); !s.ok())
      return s;
  }
  // Descriptors besides client connections: per loop its listener, epoll and wake-up
  // fds, Redis data and invalidation connections; plus logs, std streams and slack.
  FdLimit fd_limit = CurrentFdLimit();
  shared.max_connections =
      ConnectionsWithin(fd_limit, options.max_connections, 32 + 8 * static_cast<size_t>(threads));
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < threads; ++i) {
    workers.push_back(std::make_unique<Worker>(shared, *endpoint));
    if (Status s = workers.back()->Listen(listen); !s.ok()) return s;
    // Port 0: the first loop gets a free port, the others share it (SO_REUSEPORT).
    if (listen.port() == 0) listen.port(static_cast<uint16_t>(workers.back()->port()));
  }
  for (auto& w : workers) w->Start();
  std::vector<std::thread> running;
  for (auto& w : workers) running.emplace_back([&w] { w->Run(); });
  log.Info("serve_listening",
           {{"address", listen.address().to_string()},
            {"scheme", shared.tls ? "https" : "http"},
            {"port", static_cast<int>(listen.port())},
            {"threads", threads},
            // Every shape tracks reads (per node on a cluster, on the current primary
            // behind Sentinels): the near-cache is on wherever the option is.
            {"near_cache", options.near_cache ? "on" : "off"},
            {"redis", endpoint->cluster      ? "cluster"
                      : endpoint->sentinel() ? "sentinel"
                                             : "server"},
            {"fd_limit", fd_limit.soft},
            {"max_connections", static_cast<uint64_t>(shared.max_connections)},
            {"max_connections_asked", static_cast<uint64_t>(options.max_connections)},
            {"max_connections_per_ip", static_cast<uint64_t>(options.max_connections_per_ip)},
            {"rate_per_ip", options.rate_per_ip},
            {"rate_per_key", options.rate_per_key},
            {"daily_quota_per_key", options.daily_quota_per_key},
            {"enumeration_ratio", options.enumeration_ratio},
            {"enumeration_min_lookups", options.enumeration_min_lookups},
            {"enumeration_action", options.enumeration_suspend ? "suspend" : "log"},
            {"read_timeout_s", static_cast<int64_t>(options.read_timeout.count())},
            {"idle_timeout_s", static_cast<int64_t>(options.idle_timeout.count())}});
  std::stop_callback on_stop(stop, [&] {
    shared.stopping = true;
    for (auto& w : workers) w->Stop();
  });
  for (auto& t : running) t.join();
  log.Info("serve_stopped", {});
  return Status::Ok();
}

}  // namespace pdv::api
