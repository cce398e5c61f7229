#pragma once

// The rewrite of what still holds a person after their rows are gone, and of nothing
// else. In PostgreSQL 15 a plain VACUUM prunes dead tuples but does not clear the bytes
// they leave: compactify_tuples (PageRepairFragmentation for heap pages,
// PageIndexMultiDelete for btree leaves) moves the surviving tuples over part of the
// freed space and leaves the rest as it was, so a tuple that lay at the bottom of its
// page's tuple area, or a page whose every tuple died, keeps the bytes until the space
// is reused; only a new relation file (VACUUM FULL, REINDEX) or the truncation of empty
// pages at the relation's end (VACUUM, at least 1/16 of it or 1,000 pages) takes them
// off the disk. No SQL command rewrites one page. So the unit is the relation: after a
// plain VACUUM and a checkpoint, each relation of the tables named (every partition,
// its TOAST table, every index) is read from its files for the person's values, and
// only the ones that hold some are rewritten: VACUUM FULL of the partition when its heap
// or TOAST holds one, else REINDEX of each index that does. The statistics catalogs
// (pg_statistic, pg_statistic_ext_data) are scanned too: ANALYZE copies sampled values
// into them, so when they hold one the tables are analyzed again and the catalog is
// rewritten (a superuser's right). Needs the server's files
// readable by this process (a `pdv up` data directory). Internal to the subject
// component.

#include <nlohmann/json.hpp>
#include <stop_token>
#include <string>
#include <vector>

#include "common/status.h"
#include "pg/connection.h"
#include "subject/byte_scan.h"

namespace pdv::subject {

// For the `tables` of `conn`'s database (that exist). {"relations_scanned" (the tables'),
// "statistics_rebuilt", "bytes_scanned", "rewritten": [{"relation", "how", "bytes"}],
// "bytes_rewritten", "seconds"}. A relation whose files cannot be read is rewritten (it might hold
// them). Errors are the database's.
Result<nlohmann::json> RewriteRelationsHolding(pg::Connection& conn,
                                               const std::vector<std::string>& tables,
                                               const std::vector<Needle>& needles,
                                               std::stop_token stop);

}  // namespace pdv::subject
