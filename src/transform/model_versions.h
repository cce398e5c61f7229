#pragma once

// dbt's model versions: a model described with `versions:` in a properties file is one
// node per version (unique id model.<package>.<name>.v<v>, relation <name>_v<v>), each
// defined in the file <name>_v<v>.sql or the one its `defined_in` names. ref('name')
// reads its latest_version (the highest version when not set); ref('name', v=2) one.

#include <string>

#include "transform/project.h"

namespace pdv::transform {

// The name ref() records for a pinned version: "<name>.v<version>", which is also the last
// part of that version's unique id.
std::string VersionedRefName(const std::string& name, const std::string& version);

// The version a ref of `name` reads among the nodes of `package`: the pinned one for
// "<name>.v<version>", else the latest. Null: `name` has no versions there.
const Node* FindVersionedModel(const std::map<std::string, Node>& nodes, const std::string& package,
                               const std::string& name);

}  // namespace pdv::transform
