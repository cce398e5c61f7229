#pragma once

// `pdv transform clean`: removes the project's clean-targets, as dbt clean does.

#include "common/status.h"
#include "transform/transform.h"

namespace pdv::transform {

// Removes each of dbt_project.yml's `clean-targets` (default: the target-path) under the
// project folder, printing each. A target outside the project folder refuses the whole
// clean (nothing is removed); a protected one (the project itself, a model, seed, test,
// macro, snapshot or analysis path) is left with a line saying so, as dbt does. Errors
// name dbt_project.yml:line.
Status Clean(const TransformOptions& options);

}  // namespace pdv::transform
