#include "cli/command.h"

#include <fmt/format.h>

namespace pdv::cli {

void ConfigFlags::Add(CLI::App* app, const std::string& flag, const std::string& key) {
  const ConfigKey* spec = nullptr;
  for (const auto& k : AllConfigKeys()) {
    if (k.name == key) spec = &k;
  }
  std::string help = spec ? spec->help : key;
  if (spec && spec->default_value) help += fmt::format(" (default {})", *spec->default_value);
  help += fmt::format(" [config {}, env {}]", key, EnvVarFor(key));
  auto& slot = values_[key];
  slot.flag = flag;
  app->add_option(flag, slot.value, help);
}

std::map<std::string, ConfigSources::Flag> ConfigFlags::Given() const {
  std::map<std::string, ConfigSources::Flag> out;
  for (const auto& [key, slot] : values_) {
    if (!slot.value.empty()) out[key] = slot;
  }
  return out;
}

int Finish(std::string_view command, const Status& done) {
  if (done.ok()) return kExitOk;
  fmt::print(stderr, "{}: {}\n", command, done.message());
  return kExitFailure;
}

Logger MakeLogger(const Config& config, const std::string& component) {
  auto level = config.Get("log_level");
  return Logger(stderr, component,
                config.Get("log_format") == "json" ? LogFormat::kJson : LogFormat::kKeyValue,
                level == "debug"   ? LogLevel::kDebug
                : level == "warn"  ? LogLevel::kWarn
                : level == "error" ? LogLevel::kError
                                   : LogLevel::kInfo);
}

}  // namespace pdv::cli
