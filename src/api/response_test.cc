#include "api/response.h"

#include <gtest/gtest.h>

namespace pdv::api {
namespace {

TEST(ResponseTest, KeepAliveAnswerHasTheLengthAndNoConnectionHeader) {
  std::string out = "left over";
  WriteResponse({}, R"({"a":1})", out);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nServer: pdv\r\nContent-Type: application/json; "
            "charset=utf-8\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
            "Content-Length: 7\r\n\r\n{\"a\":1}");
}

TEST(ResponseTest, RetryAfterCloseAndOtherTypes) {
  std::string out;
  WriteResponse({.status = 429, .content_type = "text/plain", .retry_after_s = 3, .close = true},
                "", out);
  EXPECT_EQ(out,
            "HTTP/1.1 429 Too Many Requests\r\nServer: pdv\r\nContent-Type: text/plain\r\n"
            "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nRetry-After: "
            "3\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
  WriteResponse({.status = 431}, "x", out);
  EXPECT_EQ(out.rfind("HTTP/1.1 431 Request Header Fields Too Large\r\n", 0), 0u);
  EXPECT_EQ(ReasonPhrase(299), "Unknown");
  WriteResponse({.content_type = "text/html", .content_security_policy = "default-src 'none'"}, "",
                out);
  EXPECT_NE(out.find("\r\nContent-Security-Policy: default-src 'none'\r\n"), std::string::npos)
      << out;
}

}  // namespace
}  // namespace pdv::api
