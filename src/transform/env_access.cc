#include "transform/env_access.h"

#include <fmt/format.h>

namespace pdv::transform {

std::string EnvVarRefusal(std::string_view name, EnvScope scope,
                          const std::set<std::string>& declared) {
  if (name.starts_with("PDV_")) {
    return fmt::format(
        "env_var('{}'): PDV_* variables are the platform's configuration and secrets; no "
        "project or package file may read them (profiles.yml and packages.yml included)",
        name);
  }
  if (scope != EnvScope::kProject) return "";
  if (name.starts_with("DBT_ENV_SECRET_")) {
    return fmt::format(
        "env_var('{}'): Secret env vars are allowed only in profiles.yml or packages.yml", name);
  }
  if (name.starts_with("DBT_ENV_") || declared.contains(std::string(name))) return "";
  return fmt::format(
      "env_var('{}'): outside profiles.yml and packages.yml only DBT_ENV_* variables "
      "(DBT_ENV_SECRET_* not even those) and those declared with --env-var are visible",
      name);
}

std::string EnvVarDeclarationRefusal(std::string_view name) {
  if (name.starts_with("PDV_") || name.starts_with("DBT_ENV_SECRET_") ||
      name.find("PASSWORD") != std::string_view::npos) {
    return fmt::format(
        "--env-var {}: a secret cannot be made readable by models (PDV_* variables are the "
        "platform's, DBT_ENV_SECRET_* ones belong in profiles.yml or packages.yml)",
        name);
  }
  return "";
}

}  // namespace pdv::transform
