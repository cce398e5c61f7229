#include "redis/endpoint.h"

#include <fmt/format.h>
#include <hiredis/hiredis.h>

namespace pdv::redis {
std::vector<std::string_view> AuthCommand(const Endpoint& endpoint) {
  if (endpoint.password.empty()) return {};
  if (endpoint.user.empty()) return {"AUTH", endpoint.password};
  return {"AUTH", endpoint.user, endpoint.password};
}

std::string FormatCommand(const std::vector<std::string_view>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (auto a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  char* cmd = nullptr;
  long long n =
      redisFormatCommandArgv(&cmd, static_cast<int>(args.size()), argv.data(), lens.data());
  if (n < 0) return {};
  std::string formatted(cmd, static_cast<size_t>(n));
  redisFreeCommand(cmd);
  return formatted;
}

}  // namespace pdv::redis
