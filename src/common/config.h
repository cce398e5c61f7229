#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace pdv {

// How a configuration key's value is checked when it is loaded.
enum class ConfigKind {
  kString,
  kSecret,
  kPostgresUrl,
  kRedisUrl,
  kHostPort,
  kInt,
  kDouble,
  kEnum,
  // A replication slot's or publication's name, written into replication commands:
  // lowercase letters, digits and _, at most 63, not starting with a digit (PostgreSQL's
  // rule for slot names; the same for publications, so neither needs quoting).
  kSqlName
};

// One key of pdv.yaml. Nested YAML maps name keys with dots ("generate.seed"); the
// environment variable is PDV_ + the key upper-cased with dots as underscores
// (PDV_GENERATE_SEED); the flag is chosen by each subcommand.
struct ConfigKey {
  std::string name;
  ConfigKind kind;
  std::optional<std::string> default_value = {};
  std::string help = {};
  double min = 0;                         // kInt, kDouble
  double max = 0;                         // kInt, kDouble
  std::vector<std::string> choices = {};  // kEnum
  std::size_t min_length = 0;             // kSecret
};

// Every key any subcommand reads.
const std::vector<ConfigKey>& AllConfigKeys();

// "generate.seed" -> "PDV_GENERATE_SEED".
std::string EnvVarFor(std::string_view key);

struct ConfigSources {
  // Explicit file (--config): must exist. Without it, PDV_CONFIG names one, and
  // without that ./pdv.yaml is read if present.
  std::optional<std::string> file;
  // The process environment (only PDV_* entries matter).
  std::map<std::string, std::string> env;
  // Values given as flags, by key name, with the flag's spelling for messages.
  struct Flag {
    std::string value;
    std::string flag;
  };
  std::map<std::string, Flag> flags;
};

// The merged, validated configuration: flag over environment over file over default.
// Immutable after Load; thread-safe to read.
class Config {
 public:
  // Fails with one line naming the key and where the bad value came from
  // ("config: generate.rate from PDV_GENERATE_RATE: expected a number >= 0, got 'fast'"),
  // or the file and line for YAML problems and unknown keys.
  static Result<Config> Load(const ConfigSources& sources);

  // The value, or an error saying the key is not set and every way to set it.
  Result<std::string> Require(std::string_view key) const;
  std::optional<std::string> Get(std::string_view key) const;
  // For kInt / kDouble keys that have a value (validated at load).
  int64_t GetInt(std::string_view key) const;
  double GetDouble(std::string_view key) const;
  // "file pdv.yaml:3", "environment PDV_X", "flag --x", "default".
  std::string SourceOf(std::string_view key) const;
  // Path of the file read, if any.
  const std::optional<std::string>& file() const { return file_; }

 private:
  struct Value {
    std::string value;
    std::string source;
  };
  std::map<std::string, Value, std::less<>> values_;
  std::optional<std::string> file_;
};

// Reads PDV_* variables from the process environment.
std::map<std::string, std::string> ProcessEnvironment();

}  // namespace pdv
