#pragma once

// What an erasure does to the files, beyond the rows: after the person's rows are gone
// from every layer, the bytes that still hold them in files the platform owns go too.
//   - the warehouse's WAL: checkpoints and segment switches until every segment written
//     before the erasure is removed (bounded in time; wal_recycle must be off, or a
//     segment is renamed and kept, not removed);
//   - Redis's append-only file: one rewrite once the erasure is applied, so the old
//     record is in no AOF file;
//   - a plaintext list of CPFs (`pdv up`'s cpfs.txt for the demo's POS): the person's
//     line.
// Each returns what it did, for the receipt.

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stop_token>
#include <string>

#include "common/status.h"
#include "pg/connection.h"
#include "redis/client.h"

namespace pdv::subject {

// Waits (checkpoint, pg_switch_wal, again) until the oldest WAL segment left is newer
// than the one the erasure ended in, up to `bound`. {"wal_segment_at_erasure",
// "oldest_segment_now", "checkpoints", "seconds"}; an error naming what stops it
// (wal_recycle on, a replication slot or wal_keep_size holding the segment) at the bound.
Result<nlohmann::json> RemoveWalBeforeNow(pg::Connection& warehouse, std::chrono::seconds bound,
                                          std::stop_token stop);

// BGREWRITEAOF, then waits for the rewrite to end (up to `bound`). {"rewritten": true,
// "seconds"}; {"rewritten": false, "reason"} where the server keeps no AOF.
Result<nlohmann::json> RewriteAppendOnlyFile(redis::Client& redis, std::chrono::seconds bound,
                                             std::stop_token stop);

// Rewrites `file` without the lines that hold any of `values` (a new file renamed over
// the old one, with its mode). The number of lines removed; 0 when the file is absent.
Result<int> RemoveLinesHolding(const std::filesystem::path& file,
                               const std::vector<std::string>& values);

}  // namespace pdv::subject
