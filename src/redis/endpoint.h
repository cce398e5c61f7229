#pragma once

// What both Redis clients share besides the URL (common/redis_url.h): the AUTH command
// of an endpoint and the RESP formatting of commands.

#include <string>
#include <string_view>
#include <vector>

#include "common/redis_url.h"
#include "common/status.h"

namespace pdv::redis {

// The AUTH command `endpoint` needs (AUTH password, or AUTH user password for an ACL
// user); empty without a password. Views into `endpoint`.
std::vector<std::string_view> AuthCommand(const Endpoint& endpoint);
// RESP encoding of one command; "" only when out of memory.
std::string FormatCommand(const std::vector<std::string_view>& args);

}  // namespace pdv::redis
