#pragma once

#include <cstdint>
#include <cstdio>
#include <stop_token>
#include <string>

#include "common/status.h"
#include "generate/reference_data.h"
#include "pg/connection.h"

namespace pdv::generate {

struct BulkLoadOptions {
  uint64_t count = 0;
  uint64_t seed = 1;
  std::string cpf_key;
  int64_t as_of_us = 0;           // sign-ups are spread over the three years before
  int threads = 2;                // generator threads feeding the one COPY stream
  std::FILE* progress = nullptr;  // progress bar / lines, or none
  // Keep the new customers' CPFs for the result (12 bytes each, held until the commit,
  // so that only loaded customers are reported): only when someone wants them.
  bool want_cpfs = false;
};

struct BulkLoadResult {
  uint64_t rows = 0;
  double seconds = 0;
  double keys_seconds = 0;       // of which rebuilding the keys
  bool rebuilt_indexes = false;  // the table was empty: keys rebuilt after the load
  std::string cpfs;              // with want_cpfs: the new customers' CPFs, one per line
};

// Loads `count` new customers with one binary COPY in one transaction: all or nothing.
// Into an empty table the keys are dropped first and rebuilt once at the end (a sorted
// build is several times cheaper than a million index insertions), inside the same
// transaction, so no reader sees the table without them. Stops early (rolled back)
// when `stop` is requested. Uses `conn` for the whole load, and memory that does not grow
// with `count` (unless want_cpfs).
pdv::Result<BulkLoadResult> BulkLoad(pg::Connection& conn, const ReferenceData& data,
                                     const BulkLoadOptions& options, std::stop_token stop);

}  // namespace pdv::generate
