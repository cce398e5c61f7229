#pragma once

// `pdv transform debug`, dbt's first CI step: which profile, target and project files were
// found, whether they load, and whether the target's warehouse answers `select 1`.

#include "common/status.h"
#include "transform/transform.h"

namespace pdv::transform {

// Prints each check on options.out, then "All checks passed!". A failed check is the
// returned error, naming what failed (the profiles.yml file:line, the connection error
// with the target's secrets scrubbed); the checks after it that can still run do run.
Status Debug(const TransformOptions& options);

}  // namespace pdv::transform
