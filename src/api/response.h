#pragma once

// The HTTP/1.1 answers of the API, written as one buffer: one send per answer, and none
// of a general serializer's work for the few headers the API ever sends.

#include <string>
#include <string_view>

namespace pdv::api {

struct ResponseHead {
  unsigned status = 200;
  std::string_view content_type = "application/json; charset=utf-8";
  int retry_after_s = 0;  // 0: no Retry-After
  bool close = false;     // Connection: close (keep-alive otherwise, HTTP/1.1's default)
  // Set: a Content-Security-Policy header (the HTML status page).
  std::string_view content_security_policy;
};

// Replaces `out` with the whole answer: status line, headers, body. Every answer says
// `Cache-Control: no-store` (answers are a member's data, or live state: no proxy or
// browser may keep them) and `X-Content-Type-Options: nosniff` (a browser must take the
// JSON as JSON, never guess HTML from a body that echoes input).
void WriteResponse(const ResponseHead& head, std::string_view body, std::string& out);

// The reason phrase of a status the API answers with ("Unknown" for any other).
std::string_view ReasonPhrase(unsigned status);

}  // namespace pdv::api
