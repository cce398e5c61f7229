#include "common/log.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

namespace pdv {
namespace {

bool IsSecretKey(std::string_view key) {
  std::string lower(key);
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  for (std::string_view word : {"password", "secret", "token", "key", "cpf"}) {
    if (lower.find(word) != std::string::npos) {
      // "cpf_hash" is the keyed hash, safe to print; "cpf" alone is not.
      if (word == "cpf" && lower.find("cpf_hash") != std::string::npos) continue;
      return true;
    }
  }
  return false;
}

bool NeedsQuoting(std::string_view v) {
  if (v.empty()) return true;
  return std::any_of(v.begin(), v.end(), [](char c) {
    return c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20;
  });
}

std::string_view LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

}  // namespace

std::string RedactUrl(std::string_view url) {
  std::string out(url);
  // user:password@ in a URL.
  if (auto scheme = out.find("://"); scheme != std::string::npos) {
    auto at = out.find('@', scheme + 3);
    auto colon = out.find(':', scheme + 3);
    if (at != std::string::npos && colon != std::string::npos && colon < at) {
      out = out.substr(0, colon + 1) + "***" + out.substr(at);
    }
  }
  // password=... as a libpq key=value pair or a URL query parameter, every one of them.
  for (size_t pw = out.find("password="); pw != std::string::npos;
       pw = out.find("password=", pw + 1)) {
    size_t value = pw + 9;
    size_t end = out.find_first_of(" &", value);
    if (end == std::string::npos) end = out.size();
    out.replace(value, end - value, "***");
  }
  return out;
}

LogField::LogField(std::string_view key, std::string_view value) : key_(key) {
  if (IsSecretKey(key)) {
    value_ = "[redacted]";
  } else {
    value_ = RedactUrl(value);
  }
}
LogField::LogField(std::string_view key, int64_t value)
    : key_(key), value_(std::to_string(value)), is_text_(false) {}
LogField::LogField(std::string_view key, uint64_t value)
    : key_(key), value_(std::to_string(value)), is_text_(false) {}
LogField::LogField(std::string_view key, double value)
    : key_(key), value_(fmt::format("{:.6g}", value)), is_text_(false) {}
LogField::LogField(std::string_view key, bool value)
    : key_(key), value_(value ? "true" : "false"), is_text_(false) {}

Logger::Logger(std::FILE* out, std::string component, LogFormat format, LogLevel min_level)
    : out_(out), component_(std::move(component)), format_(format), min_level_(min_level) {}

std::string Logger::Format(LogLevel level, std::string_view event,
                           std::initializer_list<LogField> fields, bool with_time) const {
  std::string ts;
  if (with_time) {
    auto now =
        std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    ts = fmt::format("{:%Y-%m-%dT%H:%M:%S}Z", now);
  }
  if (format_ == LogFormat::kJson) {
    nlohmann::ordered_json line;
    if (with_time) line["ts"] = ts;
    line["level"] = LevelName(level);
    line["component"] = component_;
    line["event"] = event;
    for (const auto& f : fields) {
      if (f.is_text()) {
        line[f.key()] = f.value();
      } else {
        line[f.key()] = nlohmann::json::parse(f.value(), nullptr, false);
      }
    }
    return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  std::string out;
  if (with_time) out += fmt::format("ts={} ", ts);
  out += fmt::format("level={} component={} event={}", LevelName(level), component_, event);
  for (const auto& f : fields) {
    out += ' ';
    out += f.key();
    out += '=';
    if (f.is_text() && NeedsQuoting(f.value())) {
      out +=
          nlohmann::json(f.value()).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    } else {
      out += f.value();
    }
  }
  out += '\n';
  return out;
}

void Logger::Log(LogLevel level, std::string_view event, std::initializer_list<LogField> fields) {
  if (level < min_level_) return;
  std::string line = Format(level, event, fields, true);
  std::lock_guard lock(mu_);
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fflush(out_);
}

}  // namespace pdv
