#pragma once

// dbt's scrubbing of secrets: the value of every DBT_ENV_SECRET_* variable is shown as
// "*****" in what the runner prints, returns as an error and writes (target/*.json,
// compiled SQL, package-lock.yml), wherever the value came from (profiles.yml, a git URL
// in packages.yml, --vars).

#include <string>
#include <string_view>
#include <vector>

namespace pdv::transform {

inline constexpr char kScrubbed[] = "*****";

class SecretMask {
 public:
  SecretMask() = default;
  // The non-empty values of the DBT_ENV_SECRET_* entries of `env` (envp-style, e.g.
  // `environ`; null is none). Reads `env` once: later changes are not seen.
  static SecretMask FromEnvironment(const char* const* env);
  // A mask of exactly these values (empty ones ignored).
  static SecretMask Of(std::vector<std::string> values);

  // `text` with every occurrence of a secret replaced by kScrubbed, also in its
  // JSON-escaped spelling (artifacts are JSON). Pure, thread-safe.
  std::string Scrub(std::string_view text) const;
  bool empty() const { return spellings_.empty(); }

 private:
  std::vector<std::string> spellings_;  // longest first, so no secret is half-replaced
};

}  // namespace pdv::transform
