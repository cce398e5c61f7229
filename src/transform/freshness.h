#pragma once

// `pdv transform source freshness`: for each selected source table with a freshness
// config and a loaded_at_field, the age of its newest row against warn_after and
// error_after, printed as dbt prints it and written to target/sources.json.

#include <cstdio>
#include <set>
#include <string>

#include "common/status.h"
#include "transform/adapter.h"
#include "transform/project.h"
#include "transform/transform.h"

namespace pdv::transform {

// The period of a threshold ({count: 12, period: hour}) in seconds; 0 when not set.
Result<double> ThresholdSeconds(const nlohmann::json& threshold);

// pass / warn / error for an age, dbt's rule: error_after first, then warn_after.
std::string FreshnessStatus(double age_seconds, const nlohmann::json& freshness);

// Checks `sources` (unique ids; those without freshness or loaded_at_field are left out,
// as in dbt). error counts the stale (error) and the failed queries.
RunSummary CheckFreshness(const Project& project, Adapter& adapter,
                          const std::set<std::string>& sources, std::FILE* out);

}  // namespace pdv::transform
