#include "api/response.h"

#include <fmt/format.h>

#include <iterator>

namespace pdv::api {

std::string_view ReasonPhrase(unsigned status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

void WriteResponse(const ResponseHead& head, std::string_view body, std::string& out) {
  out.clear();
  auto it = std::back_inserter(out);
  fmt::format_to(it,
                 "HTTP/1.1 {} {}\r\nServer: pdv\r\nContent-Type: {}\r\nCache-Control: "
                 "no-store\r\nX-Content-Type-Options: nosniff\r\n",
                 head.status, ReasonPhrase(head.status), head.content_type);
  if (!head.content_security_policy.empty()) {
    fmt::format_to(it, "Content-Security-Policy: {}\r\n", head.content_security_policy);
  }
  if (head.retry_after_s > 0) fmt::format_to(it, "Retry-After: {}\r\n", head.retry_after_s);
  if (head.close) out += "Connection: close\r\n";
  fmt::format_to(it, "Content-Length: {}\r\n\r\n", body.size());
  out += body;
}

}  // namespace pdv::api
