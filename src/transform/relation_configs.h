#pragma once

// What dbt applies to a relation once a materialization has built it: `grants` (dbt's
// apply_grants: the configured privileges granted, those no longer configured revoked)
// and `persist_docs` (the node's and its columns' descriptions as COMMENT ON).

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "transform/materializations.h"

namespace pdv::transform {

// The `grants` config as privilege -> grantees (lower-case privileges, as dbt reads them);
// an error naming `where` when it is not a mapping of names or lists of names.
Result<std::map<std::string, std::vector<std::string>>> GrantsConfig(const nlohmann::json& grants,
                                                                     const std::string& where);

// The statements that take `current` grants to `wanted` (dbt's diff: revoke what is no
// longer configured, grant what is new). Pure.
std::vector<std::string> GrantChangeSql(
    const RelationRef& relation, const std::map<std::string, std::vector<std::string>>& current,
    const std::map<std::string, std::vector<std::string>>& wanted);

// Inside the node's transaction, after its relation (`built`) is in place: its grants and
// persisted docs. A failure is the message to report (the caller's guard rolls back).
Status ApplyRelationConfigs(NodeRun& run, RelationKind built);

}  // namespace pdv::transform
