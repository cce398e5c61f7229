#include "redis/tls.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

namespace pdv::redis {

std::string OpenSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    out += (out.empty() ? "" : "; ") + std::string(buf);
  }
  return out.empty() ? "unknown TLS error" : out;
}

pdv::Result<SslContext> MakeClientTlsContext(const Endpoint& endpoint) {
  SslContext ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return Status::Error("redis: cannot create a TLS context: " + OpenSslErrors());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  int loaded = endpoint.ca_cert.empty()
                   ? SSL_CTX_set_default_verify_paths(ctx.get())
                   : SSL_CTX_load_verify_locations(ctx.get(), endpoint.ca_cert.c_str(), nullptr);
  if (loaded != 1) {
    return Status::Error(fmt::format("redis: cannot load the CA certificates {}: {}",
                                     endpoint.ca_cert.empty() ? "(system)" : endpoint.ca_cert,
                                     OpenSslErrors()));
  }
  return ctx;
}

Status ExpectServerName(SSL* ssl, const Endpoint& endpoint) {
  in6_addr any{};
  bool is_address = ::inet_pton(AF_INET, endpoint.host.c_str(), &any) == 1 ||
                    ::inet_pton(AF_INET6, endpoint.host.c_str(), &any) == 1;
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  int ok = is_address ? X509_VERIFY_PARAM_set1_ip_asc(param, endpoint.host.c_str())
                      : X509_VERIFY_PARAM_set1_host(param, endpoint.host.c_str(), 0);
  if (ok != 1) return Status::Error("redis: cannot set the expected server name");
  if (!is_address) SSL_set_tlsext_host_name(ssl, endpoint.host.c_str());
  return Status::Ok();
}

}  // namespace pdv::redis
