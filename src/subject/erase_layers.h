#pragma once

// The erasure itself, layer by layer, as `pdv subject forget` applies it and `pdv
// subject reapply` applies it again after a restore: one code path, so that a reapplied
// erasure is the same erasure. Internal to the subject component.

#include <nlohmann/json.hpp>
#include <set>
#include <stop_token>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/status.h"
#include "subject/layers.h"
#include "subject/subject.h"

namespace pdv::subject {

struct Erasure {
  std::vector<std::string> cliente_ids;  // erased from every warehouse layer and Redis
  std::vector<std::string> source_ids;   // also deleted from the OLTP table (at_source)
  std::set<std::string> cpf_hashes;      // their Redis records' keys
  bool rewrite = false;                  // VACUUM FULL instead of VACUUM
};

// Erases `erasure` from every layer: the OLTP rows of source_ids; RAW (every version),
// staging (the row), the history snapshot and the dimension (the row becomes a
// tombstone with no identifier of the person) in one warehouse transaction under the
// subject erase lock (common/erasure.h); Redis under the cache's sync lock; then VACUUM
// (FULL with rewrite) of every table that exists. Returns {<layer>: {erased_at, rows},
// redis: {erased_at, records, id_entries}, vacuum: {at, tables, full}}. An error leaves
// the layers before it erased (a rerun repeats the rest: every step is idempotent).
// Uses the Layers' connections for the call.
Result<nlohmann::json> EraseFromLayers(Layers& layers, const Sources& sources,
                                       const Erasure& erasure, Logger& log, std::stop_token stop);

}  // namespace pdv::subject
