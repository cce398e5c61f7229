#pragma once

#include "common/config.h"
#include "subject/subject.h"

namespace pdv::cli {

// The servers and keys a subject request reads from the configuration (pdv.yaml, the
// environment): one reading for `pdv subject` and for `pdv up`'s reapply at start.
subject::Sources SubjectSources(const Config& config);

}  // namespace pdv::cli
