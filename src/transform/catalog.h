#pragma once

// `pdv transform docs generate`: target/catalog.json from the warehouse's catalog (each
// model's, seed's, snapshot's and source's relation: its kind, owner, comment and
// columns with their types), beside the manifest the command writes too.

#include <cstdio>

#include "common/status.h"
#include "transform/adapter.h"
#include "transform/project.h"

namespace pdv::transform {

// Writes target/catalog.json; relations not built yet are left out, as in dbt.
Status WriteCatalog(const Project& project, Adapter& adapter, std::FILE* out);

}  // namespace pdv::transform
