#pragma once

// Public interface of the cdc stage: log-based change data capture from the OLTP
// PostgreSQL (logical replication, pgoutput) into the warehouse's RAW layer, exactly once.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <stop_token>
#include <string>

#include "common/log.h"
#include "common/status.h"

namespace pdv::cdc {

// NOTIFY channel told after each RAW commit (payload: the commit LSN).
inline constexpr char kRawChannel[] = "pdv_raw";

struct CdcOptions {
  std::string oltp_url;
  std::string warehouse_url;
  std::string slot = "pdv_slot";
  std::string publication = "pdv_pub";
  std::string schema = "public";
  std::string table = "clientes_clube";
  // Stop once the source's WAL position at start is in RAW (scripts, tests).
  bool once = false;
  // Drop the slot (if any) and take a new snapshot; keys missing from it get deletions.
  bool resync = false;
  // When the slot is missing on the source after a snapshot (a failover to a standby,
  // where the logical slot does not exist): resync by itself instead of stopping with an
  // error. Opt-in: the default stays the clear error.
  bool auto_resync = false;
  size_t batch_rows = 20'000;                  // a batch closes at this many rows,
  std::chrono::milliseconds flush_idle{2};     // or after this long without a message,
  std::chrono::milliseconds max_batch_age{5};  // or when its first row is this old
  std::string decoding_work_mem;               // walsender logical_decoding_work_mem
  // Ask the walsender to stream transactions larger than its logical_decoding_work_mem
  // before they commit (buffered here, spilled to disk, applied at commit). Off: the
  // server spills them itself and sends them whole at commit, and their rows go into
  // the warehouse as they arrive, which overlaps decoding with loading (faster).
  bool streaming = false;
  // Bound of the per-batch memory of recent rows kept to carry unchanged TOASTed values
  // forward (past it, they are looked up in the batch). Streamed transactions spill to a
  // file in `spill_dir` at once; whole ones are never held.
  size_t transaction_memory_bytes = 64u << 20;
  std::string spill_dir;          // "": $TMPDIR, else /tmp
  double retry_timeout_s = 0;     // 0: retry lost connections forever
  std::FILE* progress = nullptr;  // snapshot progress bar
  // Prometheus metrics at http://<metrics_listen>/metrics ("": none; port 0: any).
  std::string metrics_listen = "127.0.0.1:9187";
  // Active/standby (pg/lease.h): a standby takes over once the active instance has not
  // renewed its lease for this long.
  std::chrono::milliseconds lease_ttl{3000};
  // The erasure register's key (common/erasure.h): changes and snapshot rows of an erased
  // cliente_id never reach RAW. Needed once the register lists anyone.
  std::string erasure_key;
  // The register's file outside the warehouse (common/erasure_register_file.h): read as
  // well, so that a restored warehouse whose register lost an erasure lets nobody back
  // into RAW. "": the warehouse's register only.
  std::string erasure_register;
  // RAW retention (raw.retention_days): superseded versions older than this many days
  // are removed, in batches, by the active instance; 0: kept forever.
  int retention_days = 0;
  std::chrono::milliseconds retention_interval{60'000};
  int retention_batch = 5'000;
};

// Runs until `stop` (or, with `once`, until caught up). Lost connections to either
// server are logged and retried with backoff, resuming from the warehouse checkpoint,
// so nothing is lost or doubled. Fails on what a retry cannot fix: a dropped slot
// (the message says to run --resync), a malformed message, a rejected RAW write.
Status Run(const CdcOptions& options, Logger& log, std::stop_token stop);

}  // namespace pdv::cdc
