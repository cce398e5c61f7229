#pragma once

// The transform stage: a native runner for dbt-style projects (`pdv transform seed | run |
// test | build | compile | ls`) and `watch`, which runs the project's models on every
// commit the CDC stage notifies.

#include <cstdio>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/status.h"

namespace pdv::transform {

struct TransformOptions {
  std::string command;  // seed, run, test, build, compile, ls
  std::string project_dir;
  std::string profiles_dir;
  // --target-path (dbt's flag): artifacts and compiled SQL here, not in the project's
  // target-path ("": the project's). `pdv up` points it into the data directory, so the
  // stage never writes into an installed or checked-out project.
  std::string target_path;
  std::string target;
  std::string vars;                   // YAML mapping
  std::vector<std::string> env_vars;  // declared readable by env_var() in models
  std::vector<std::string> select;
  std::vector<std::string> exclude;
  std::string selector;            // --selector: a selectors.yml definition (wins over --select)
  std::string state;               // --state: the folder of an earlier run's artifacts
  std::string indirect_selection;  // --indirect-selection ("": eager)
  bool full_refresh = false;
  // --event-time-start / --event-time-end: the batches a microbatch model builds.
  std::string event_time_start, event_time_end;
  int threads = 0;  // --threads: nodes run at once; 0: the profile target's threads
  // Set: the platform's project against this warehouse, no profiles.yml.
  std::optional<std::string> warehouse_url;
  std::FILE* out = stdout;
  bool quiet = false;  // no per-node lines (watch)
  // target/run_results.json and target/manifest.json after a run without errors (always
  // after one with errors). Watch writes them at most once a second: serializing the
  // manifest cost a fifth of a run's CPU at a run every ~10 ms.
  bool artifacts_on_success = true;
  // A statement run in each model's and seed's transaction right before its commit (the
  // lease's fence, pg/lease.h, set by watch): once it fails, nothing of that node lands.
  std::string fence_sql;
  // A statement run first in each model's and seed's transaction (the platform's subject
  // write lock, common/erasure.h, so that an erasure never races a model's write).
  std::string begin_sql;
};

struct RunSummary {
  int pass = 0, warn = 0, error = 0, skip = 0, total = 0;
  bool ok() const { return error == 0; }
};

// Runs one command. A project that cannot be loaded (bad YAML, unknown ref, cycle, template
// error) is an error Status; node failures are counted in the summary (and printed).
Result<RunSummary> RunCommand(const TransformOptions& options);

// Runs `options` (normally `run` of the platform's project) now and after every NOTIFY on
// `channel` from the warehouse (bursts coalesced into one run), until stopped. Lost
// connections are retried with backoff.
// Active/standby: several watches of one warehouse take turns through the "transform"
// lease; the active one's model transactions are fenced by it.
Status Watch(const TransformOptions& options, const std::string& channel, Logger& log,
             std::stop_token stop);

}  // namespace pdv::transform
