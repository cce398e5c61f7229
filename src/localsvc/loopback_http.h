#pragma once

// One HTTP/1.1 request to a server of ours on 127.0.0.1 (etcd's and Patroni's REST APIs),
// without a client library in this component.

#include <chrono>
#include <string>
#include <string_view>

#include "common/status.h"

namespace pdv::localsvc {

struct HttpReply {
  int status = 0;
  std::string body;
};

// Sends `method path` with `body` (JSON when not empty) and `Connection: close`, and reads
// the whole reply. An error when nothing answers within `timeout` or the reply is not
// HTTP; a reply of any status is a value. Thread-safe (no state).
Result<HttpReply> LoopbackHttp(int port, std::string_view method, std::string_view path,
                               std::string_view body = {},
                               std::chrono::milliseconds timeout = std::chrono::seconds(2));

}  // namespace pdv::localsvc
