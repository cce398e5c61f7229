#pragma once

// Which environment variables env_var() may read, by where the template is. dbt's rule,
// plus the platform's own: secrets are DBT_ENV_SECRET_* variables, readable only in
// profiles.yml and packages.yml (a password, a git token); PDV_* variables are the
// platform's configuration and secrets (PDV_CPF_KEY, warehouse URLs with passwords) and
// no project or package file reads them, wherever it is.

#include <set>
#include <string>
#include <string_view>

namespace pdv::transform {

enum class EnvScope {
  kProfiles,  // profiles.yml: any variable but PDV_*
  kPackages,  // packages.yml / dependencies.yml, the project's and every package's: the same
  kProject,   // dbt_project.yml, models, macros, tests, schema files: DBT_ENV_* (not
              // DBT_ENV_SECRET_*) and those the operator declared (--env-var)
};

// Why env_var(`name`) is refused in `scope` ("" when it may be read). `declared` only
// counts in kProject. Pure, thread-safe. The reason never holds the variable's value.
std::string EnvVarRefusal(std::string_view name, EnvScope scope,
                          const std::set<std::string>& declared);

// Why `name` cannot be declared readable by models with --env-var ("" when it can).
std::string EnvVarDeclarationRefusal(std::string_view name);

}  // namespace pdv::transform
