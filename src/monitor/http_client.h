#pragma once

// A small blocking HTTP/1.1 (or HTTPS) client (Boost.Beast) with one keep-alive
// connection, for the monitor's calls to the API. Reconnects when the connection was
// closed.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace pdv::monitor {

struct HttpResponse {
  int status = 0;
  std::string body;
};

class HttpClient {
 public:
  // `host_port`: "127.0.0.1:8080". Timeouts apply to each request. With `ca_cert` (a
  // PEM file) it speaks HTTPS, verifying the server's certificate and name against it.
  HttpClient(std::string host_port, int timeout_ms, std::string ca_cert = "");
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  Result<HttpResponse> Get(const std::string& path,
                           const std::vector<std::pair<std::string, std::string>>& headers = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pdv::monitor
