#pragma once

// What `pdv cdc` exposes on its metrics port: the gauges, counters and histograms the
// session, its RAW writer and its stream loop update. Internal to src/cdc/.

#include "metrics/registry.h"

namespace pdv::cdc {

// Registered on `r`, which outlives it; the pointers are the registry's. Not thread-safe
// beyond what metrics::Registry promises (the exporter reads while the session writes).
struct Metrics {
  explicit Metrics(metrics::Registry& r)
      : checkpoint_lsn(r.AddGauge("pdv_cdc_checkpoint_lsn",
                                  "WAL position of the last source commit made durable in RAW")),
        wal_end_lsn(r.AddGauge("pdv_cdc_source_wal_end_lsn",
                               "the source's end of WAL, as last reported by it")),
        lag_bytes(r.AddGauge("pdv_cdc_lag_bytes", "source WAL not yet acknowledged, in bytes")),
        lag_seconds(r.AddGauge("pdv_cdc_lag_seconds",
                               "age of the oldest source commit received but not yet in RAW")),
        rows_per_second(r.AddGauge("pdv_cdc_rows_per_second", "RAW rows per second, last 10 s")),
        rows(r.AddCounter("pdv_cdc_rows_total", "rows appended to RAW")),
        batches(r.AddCounter("pdv_cdc_batches_total", "RAW batches committed")),
        reconnects(r.AddCounter("pdv_cdc_reconnects_total", "sessions restarted after a failure")),
        batch_rows(r.AddHistogram("pdv_cdc_batch_rows", "rows per RAW batch",
                                  {1, 10, 100, 1000, 10000, 100000})),
        commit_to_raw(r.AddHistogram("pdv_cdc_commit_to_raw_seconds",
                                     "from the source commit to its RAW commit",
                                     {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10})) {}
  metrics::Gauge *checkpoint_lsn, *wal_end_lsn, *lag_bytes, *lag_seconds, *rows_per_second, *rows,
      *batches, *reconnects;
  metrics::Histogram *batch_rows, *commit_to_raw;
};

}  // namespace pdv::cdc
