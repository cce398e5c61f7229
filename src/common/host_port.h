#pragma once

// "host:port" as every listen address, API address and URL authority of the platform
// writes it: the one parser, so that they all agree.

#include <string>
#include <string_view>

#include "common/status.h"

namespace pdv {

struct HostPort {
  std::string host;  // without brackets for IPv6 ("::1")
  int port = 0;
};

// Parses "host:port", "[v6]:port", or (with `default_port` >= 0) a bare host. The port
// must be 0-65535 (0: any free port, for listeners); the host must not be empty. The
// error quotes the text. Pure.
pdv::Result<HostPort> ParseHostPort(std::string_view text, int default_port = -1);

// "host:port", bracketing an IPv6 host.
std::string FormatHostPort(const HostPort& hp);

}  // namespace pdv
