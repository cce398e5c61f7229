#pragma once

#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>

namespace pdv {

enum class LogLevel { kDebug, kInfo, kWarn, kError };
enum class LogFormat { kKeyValue, kJson };

// One key=value of a log event. Values of keys that name secrets (password, secret,
// token, key, cpf) are replaced by "[redacted]"; passwords inside URLs are masked.
class LogField {
 public:
  LogField(std::string_view key, std::string_view value);
  LogField(std::string_view key, const char* value) : LogField(key, std::string_view(value)) {}
  LogField(std::string_view key, const std::string& value)
      : LogField(key, std::string_view(value)) {}
  LogField(std::string_view key, int64_t value);
  LogField(std::string_view key, int value) : LogField(key, static_cast<int64_t>(value)) {}
  LogField(std::string_view key, uint64_t value);
  LogField(std::string_view key, double value);
  LogField(std::string_view key, bool value);

  const std::string& key() const { return key_; }
  const std::string& value() const { return value_; }
  bool is_text() const { return is_text_; }

 private:
  std::string key_;
  std::string value_;
  bool is_text_ = true;
};

// Structured logger: one line per event, key=value (logfmt) or JSON, written with one
// write call so lines from threads never interleave. Thread-safe. Owns nothing but its
// settings; the FILE* must outlive it.
class Logger {
 public:
  Logger(std::FILE* out, std::string component, LogFormat format = LogFormat::kKeyValue,
         LogLevel min_level = LogLevel::kInfo);

  void Log(LogLevel level, std::string_view event, std::initializer_list<LogField> fields = {});
  void Debug(std::string_view event, std::initializer_list<LogField> fields = {}) {
    Log(LogLevel::kDebug, event, fields);
  }
  void Info(std::string_view event, std::initializer_list<LogField> fields = {}) {
    Log(LogLevel::kInfo, event, fields);
  }
  void Warn(std::string_view event, std::initializer_list<LogField> fields = {}) {
    Log(LogLevel::kWarn, event, fields);
  }
  void Error(std::string_view event, std::initializer_list<LogField> fields = {}) {
    Log(LogLevel::kError, event, fields);
  }

  // The line Log would write, without the timestamp (for tests and golden files).
  std::string Format(LogLevel level, std::string_view event, std::initializer_list<LogField> fields,
                     bool with_time) const;

 private:
  std::FILE* out_;
  std::string component_;
  LogFormat format_;
  LogLevel min_level_;
  std::mutex mu_;
};

// A URL with any password replaced by "***" ("postgresql://u:***@h/db").
std::string RedactUrl(std::string_view url);

}  // namespace pdv
