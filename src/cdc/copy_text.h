#pragma once

// RAW rows as COPY text (the format RawBatch::Add takes): escaping one field, finding a
// field in a line, and the wall clock RAW's load times come from. Pure functions but the
// clock; internal to src/cdc/.

#include <cstdint>
#include <string>
#include <string_view>

namespace pdv::cdc {

// Appends `v` to `out` as one COPY text field (backslash, tab, newline, CR escaped).
void AppendCopyField(std::string* out, std::string_view v);
// Field `index` (0-based) of a tab-separated COPY text line, as it stands (still
// escaped); empty when the line has fewer fields.
std::string_view CopyField(std::string_view line, int index);
// Now, in µs since the Unix epoch (UTC).
int64_t NowUnixUs();

}  // namespace pdv::cdc
