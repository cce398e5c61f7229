#pragma once

// TLS for Redis clients (rediss://): one place that says how a server is verified.

#include <openssl/ssl.h>

#include <memory>

#include "common/status.h"
#include "redis/endpoint.h"

namespace pdv::redis {

struct FreeSslCtx {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using SslContext = std::unique_ptr<SSL_CTX, FreeSslCtx>;

// A client context for `endpoint`: TLS 1.2 or later, the peer's certificate verified
// against endpoint.ca_cert (or the system's CAs).
pdv::Result<SslContext> MakeClientTlsContext(const Endpoint& endpoint);

// Makes `ssl` check that the certificate names endpoint.host (DNS name or IP address),
// and sends the name (SNI) when it is not an address.
Status ExpectServerName(SSL* ssl, const Endpoint& endpoint);

// The OpenSSL error queue as text (and cleared).
std::string OpenSslErrors();

}  // namespace pdv::redis
