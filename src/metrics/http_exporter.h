#pragma once

#include <memory>
#include <string>

#include "common/log.h"
#include "common/status.h"
#include "metrics/registry.h"

namespace pdv::metrics {

// Serves GET /metrics (the registry's exposition) over HTTP/1.1 on `listen`
// ("127.0.0.1:9187"), from a thread of its own, until destroyed. The registry and the
// logger must outlive it. At most 64 connections, each request whole within 10 s; accept
// failures (out of descriptors) are logged at most once a second and accepting resumes.
class HttpExporter {
 public:
  static pdv::Result<std::unique_ptr<HttpExporter>> Start(const std::string& listen,
                                                          const Registry& registry, Logger& log);
  virtual ~HttpExporter() = default;
  virtual int port() const = 0;
};

}  // namespace pdv::metrics
