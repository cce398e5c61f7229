#include "transform/config_values.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <regex>

namespace pdv::transform {
namespace {

std::string Lower(std::string s) {
  std::ranges::transform(s, s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// The configs dbt-core types as booleans.
constexpr const char* kBoolConfigs[] = {"enabled",       "full_refresh",
                                        "quote_columns", "store_failures",
                                        "copy_grants",   "invalidate_hard_deletes"};

}  // namespace

nlohmann::json NativeValue(const std::string& rendered) {
  std::string lower = Lower(rendered);
  if (lower == "true") return true;
  if (lower == "false") return false;
  if (rendered == "None" || lower == "null") return nullptr;
  static const std::regex kInteger(R"(-?\d{1,18})"), kDecimal(R"(-?\d+\.\d+)");
  if (std::regex_match(rendered, kInteger)) return std::stoll(rendered);
  if (std::regex_match(rendered, kDecimal)) return std::stod(rendered);
  return rendered;
}

std::optional<bool> ConfigBool(const nlohmann::json& value) {
  if (value.is_boolean()) return value.get<bool>();
  if (value.is_number_integer()) {
    int64_t n = value.get<int64_t>();
    if (n == 0 || n == 1) return n == 1;
  }
  if (value.is_string()) {
    std::string s = Lower(value.get<std::string>());
    if (s == "true" || s == "yes" || s == "on" || s == "1") return true;
    if (s == "false" || s == "no" || s == "off" || s == "0") return false;
  }
  return std::nullopt;
}

Status NormalizeBoolConfigs(nlohmann::json& config, const std::string& where) {
  if (!config.is_object()) return Status::Ok();
  for (const char* key : kBoolConfigs) {
    auto it = config.find(key);
    if (it == config.end() || it->is_null()) continue;
    std::optional<bool> b = ConfigBool(*it);
    if (!b) {
      return Status::Error(
          fmt::format("{}: config '{}' must be true or false, not {}", where, key, it->dump()));
    }
    *it = *b;
  }
  return Status::Ok();
}

bool ConfigFlag(const nlohmann::json& config, const char* key, bool fallback) {
  if (!config.is_object()) return fallback;
  auto it = config.find(key);
  if (it == config.end()) return fallback;
  return ConfigBool(*it).value_or(fallback);
}

}  // namespace pdv::transform
