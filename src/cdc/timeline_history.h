#pragma once

// A timeline history file (TIMELINE_HISTORY on a replication connection) read for the
// point where an older timeline ended: everything a promoted replica has of its former
// primary lies before it. A pure function of its input. Internal to src/cdc/.

#include <optional>
#include <string_view>

#include "cdc/pgoutput.h"

namespace pdv::cdc {

// The LSN where `timeline` ended (its "switchpoint": the new timeline starts there), from
// a history file's text ("<tli>\t<X/Y>\t<reason>" lines, oldest first). nullopt when the
// file does not list it (a timeline that is not an ancestor) or is malformed there.
std::optional<Lsn> TimelineSwitchPoint(std::string_view history, int timeline);

}  // namespace pdv::cdc
