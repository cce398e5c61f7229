#pragma once

// One captured row change, as the cdc stage holds it between its source transaction's
// messages and the RAW batch it goes into. Internal to src/cdc/.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cdc/pgoutput.h"
#include "warehouse/warehouse.h"

namespace pdv::cdc {

// A source table as its last Relation message described it.
struct Relation {
  uint32_t id = 0;
  std::string ns, name;
  std::vector<warehouse::RawColumn> columns;  // with SQL types resolved at the source
  bool target = false;
  mutable std::vector<int> raw_index;  // cached by RawWriter::RawIndex
  // RAW's column count when every column of this relation was last found in RAW (RAW
  // only gains columns): the per-row check is then one comparison.
  mutable size_t in_raw_at = SIZE_MAX;
};

struct Change {
  char op = 'c';  // c u d t
  std::shared_ptr<const Relation> relation;
  Tuple tuple;  // new row (c, u), old key or row (d), none (t)
  uint32_t subxid = 0;
};

}  // namespace pdv::cdc
