#include "common/host_port.h"

#include <fmt/format.h>

#include <charconv>

namespace pdv {

pdv::Result<HostPort> ParseHostPort(std::string_view text, int default_port) {
  auto bad = [&](std::string_view why) {
    return Status::Error(fmt::format("expected host:port, got '{}' ({})", text, why));
  };
  HostPort out;
  std::string_view rest = text;
  if (rest.starts_with('[')) {
    auto close = rest.find(']');
    if (close == std::string_view::npos) return bad("unclosed [");
    out.host = std::string(rest.substr(1, close - 1));
    rest.remove_prefix(close + 1);
    if (!rest.empty() && !rest.starts_with(':')) return bad("text after ]");
  } else {
    auto colon = rest.rfind(':');
    out.host = std::string(rest.substr(0, colon));
    rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon);
  }
  if (out.host.empty()) return bad("no host");
  if (rest.empty()) {
    if (default_port < 0) return bad("no port");
    out.port = default_port;
    return out;
  }
  std::string_view port = rest.substr(1);
  int value = -1;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value < 0 ||
      value > 65535) {
    return bad("port must be 0-65535");
  }
  out.port = value;
  return out;
}

std::string FormatHostPort(const HostPort& hp) {
  if (hp.host.find(':') != std::string::npos) return fmt::format("[{}]:{}", hp.host, hp.port);
  return fmt::format("{}:{}", hp.host, hp.port);
}

}  // namespace pdv
