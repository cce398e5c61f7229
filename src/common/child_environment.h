#pragma once

// What environment a child process gets. A child inherits every variable of its parent
// unless told otherwise, so the platform's secrets (PDV_CPF_KEY, DBT_ENV_SECRET_*) would
// reach processes that never need them: these pure helpers build the smaller environment
// to pass to localsvc::SpawnOptions::env instead.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace pdv {

// The entries ("NAME=value") of `env` (envp-style, null-terminated, e.g. `environ`; null
// is empty) whose name `keep` accepts, in their order. Entries without '=' are dropped.
// Pure, thread-safe as long as `env` does not change meanwhile.
std::vector<std::string> FilterEnvironment(const char* const* env,
                                           const std::function<bool(std::string_view)>& keep);

// Whether a helper command the platform runs on a user's behalf (git for `transform
// deps`) may see variable `name`: everything except the platform's own PDV_* variables
// and dbt's DBT_ENV_SECRET_* (a git URL that needs a token already carries it).
bool HelperMayInherit(std::string_view name);

// Whether a stage that `pdv up` starts (`pdv --config <its file> <stage>`) needs `name`
// from the operator's environment: only what any process needs to run (PATH, HOME, the
// locale, TZ, TMPDIR, OpenSSL's CA locations, sanitizer options) and PDV_TRANSFORM_TRACE.
// Each stage reads its credentials from its own config file; a PDV_* variable would
// override that file (common/config.h), and any other secret is no stage's business.
bool StageMayInherit(std::string_view name);

}  // namespace pdv
