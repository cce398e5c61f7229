#include "common/child_environment.h"

#include <array>

namespace pdv {

std::vector<std::string> FilterEnvironment(const char* const* env,
                                           const std::function<bool(std::string_view)>& keep) {
  std::vector<std::string> out;
  for (const char* const* e = env; e && *e; ++e) {
    std::string_view entry(*e);
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    if (keep(entry.substr(0, eq))) out.emplace_back(entry);
  }
  return out;
}

bool HelperMayInherit(std::string_view name) {
  return !name.starts_with("PDV_") && !name.starts_with("DBT_ENV_SECRET_");
}

bool StageMayInherit(std::string_view name) {
  static constexpr std::array<std::string_view, 13> kNames = {
      "PATH",  "HOME",   "USER", "LOGNAME",       "LANG",         "LANGUAGE",
      "TZ",    "TMPDIR", "TERM", "SSL_CERT_FILE", "SSL_CERT_DIR", "PDV_TRANSFORM_TRACE",
      "LC_ALL"};
  for (std::string_view n : kNames) {
    if (name == n) return true;
  }
  // LC_CTYPE, LC_TIME, ...; ASAN_OPTIONS, UBSAN_OPTIONS, ... (a sanitizer build's tests).
  return name.starts_with("LC_") ||
         (name.ends_with("SAN_OPTIONS") && name.find('_') == name.size() - 8);
}

}  // namespace pdv
