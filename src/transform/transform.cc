// RunCommand and Watch: load the project, select nodes, run them.

#include "transform/transform.h"

#include <fmt/format.h>

#include <chrono>

#include "pg/connection.h"
#include "pg/lease.h"
#include "pg/lease_runner.h"
#include "pg/notifications.h"
#include "pg/reconnect.h"
#include "transform/catalog.h"
#include "transform/freshness.h"
#include "transform/graph.h"
#include "transform/plan.h"
#include "transform/postgres_adapter.h"
#include "transform/project.h"
#include "transform/reporter.h"
#include "transform/runner.h"
#include "transform/selector.h"

namespace pdv::transform {
namespace {

LoadOptions ToLoadOptions(const TransformOptions& o) {
  return LoadOptions{.project_dir = o.project_dir,
                     .profiles_dir = o.profiles_dir,
                     .target = o.target,
                     .vars_yaml = o.vars,
                     .platform_warehouse_url = o.warehouse_url,
                     .declared_env = o.env_vars,
                     .warn = [out = o.out, quiet = o.quiet](const std::string& warning) {
                       ConsoleReporter(out, quiet, nullptr).Warning(warning);
                     }};
}

std::string ListName(const Node& n) {
  std::string fqn;
  for (const auto& part : n.fqn) fqn += (fqn.empty() ? "" : ".") + part;
  if (n.resource_type == NodeType::kSource) return "source:" + fqn;
  return fqn;
}

// The nodes --selector, or --select and --exclude, or the default selector choose.
Result<std::set<std::string>> SelectNodes(const Project& project, const Graph& graph,
                                          const TransformOptions& options) {
  // Commands that run tests take the selected nodes' tests with them (dbt's indirect
  // selection); compile and docs only what was named.
  bool with_tests =
      options.command == "test" || options.command == "build" || options.command == "ls";
  SelectorOptions so{
      .state_dir = options.state,
      .indirect = with_tests ? IndirectSelection::kEager : IndirectSelection::kEmpty};
  if (!options.indirect_selection.empty()) {
    auto mode = ParseIndirectSelection(options.indirect_selection);
    if (!mode.ok()) return Status::Error("--indirect-selection: " + mode.message());
    so.indirect = *mode;
  }
  Selector selector(project, graph, so);
  bool cli_selection = !options.select.empty() || !options.exclude.empty();
  if (!options.selector.empty() || !cli_selection) {
    auto named = LoadSelectors(project);
    if (!named.ok()) return named.status();
    std::string name = options.selector;
    if (name.empty() && named->default_name) name = *named->default_name;
    if (!name.empty()) {
      auto it = named->by_name.find(name);
      if (it == named->by_name.end()) {
        std::string known;
        for (const auto& [n, s] : named->by_name) known += (known.empty() ? "" : ", ") + n;
        return Status::Error(fmt::format("--selector {}: no such selector in selectors.yml{}", name,
                                         known.empty() ? "" : " (defined: " + known + ")"));
      }
      return selector.Select(it->second);
    }
  }
  auto spec = ParseCliSelection(options.select, options.exclude);
  if (!spec.ok()) return spec.status();
  return selector.Select(*spec);
}

Result<RunSummary> RunLoaded(const Project& project, const Graph& graph, pg::Connection* conn,
                             const TransformOptions& options) {
  auto selected = SelectNodes(project, graph, options);
  if (!selected.ok()) return selected.status();
  std::set<std::string> nodes = NodesForCommand(project, options.command, *selected);
  RunSummary summary;
  if (options.command == "ls") {
    for (const auto& id : graph.order()) {
      if (nodes.count(id)) fmt::print(options.out, "{}\n", ListName(project.nodes.at(id)));
    }
    summary.total = static_cast<int>(nodes.size());
    summary.pass = summary.total;
    return summary;
  }
  std::optional<PostgresAdapter> adapter;
  if (conn) adapter.emplace(*conn, project.target.conninfo);
  if (options.command == "freshness") {
    if (!adapter) return Status::Error("source freshness needs a database connection");
    return CheckFreshness(project, *adapter, nodes, options.out);
  }
  Runner runner(project, graph, adapter ? &*adapter : nullptr, options);
  if (options.command == "docs") {  // docs generate: the manifest and the catalog
    for (const auto& id : graph.order()) {
      const Node& n = project.nodes.at(id);
      if (nodes.count(id) &&
          (n.resource_type == NodeType::kModel || n.resource_type == NodeType::kTest)) {
        (void)runner.Compile(n);
      }
    }
    if (Status s = runner.WriteManifest(); !s.ok()) return s;
    if (!adapter) return Status::Error("docs generate needs a database connection");
    if (Status s = WriteCatalog(project, *adapter, options.out); !s.ok()) return s;
    summary.total = summary.pass = static_cast<int>(nodes.size());
    return summary;
  }
  if (options.command == "compile") {
    for (const auto& id : graph.order()) {
      if (!nodes.count(id)) continue;
      const Node& n = project.nodes.at(id);
      auto sql = runner.Compile(n);
      summary.total++;
      if (!sql.ok()) {
        runner.reporter().Error(fmt::format("Compilation Error in {} {}: {}",
                                            NodeTypeName(n.resource_type), n.name, sql.message()));
        summary.error++;
        continue;
      }
      summary.pass++;
      if (nodes.size() == 1 || !options.select.empty()) {
        fmt::print(options.out, "-- {} ({})\n{}\n", n.unique_id, n.original_file_path,
                   project.secrets.Scrub(*sql));
      }
    }
    if (Status s = runner.WriteManifest(); !s.ok()) return s;
    return summary;
  }
  return runner.Run(options.command, nodes);
}

// The first source relation of the project that does not exist yet ("" when all do, or
// when the catalog cannot say).
std::string MissingSource(const Project& project, Adapter& adapter) {
  for (const auto& [id, n] : project.nodes) {
    if (n.resource_type != NodeType::kSource) continue;
    auto kind = adapter.LookUpRelation(n.schema, n.alias);
    if (kind.ok() && *kind == RelationKind::kNone) return n.RelationName();
  }
  return "";
}

// Watch's connection, through a PostgreSQL adapter of its own.
std::string MissingSource(const Project& project, pg::Connection& conn) {
  PostgresAdapter adapter(conn, project.target.conninfo);
  return MissingSource(project, adapter);
}

}  // namespace

namespace {

Result<RunSummary> RunCommandUnscrubbed(const TransformOptions& options, const Project& project) {
  auto graph = Graph::Build(project);
  if (!graph.ok()) return graph.status();
  if (options.command == "ls") return RunLoaded(project, *graph, nullptr, options);
  auto conn = pg::Connection::Connect(project.target.conninfo);
  if (!conn.ok())
    return Status::Error(fmt::format("target '{}': {}", project.target.name, conn.message()));
  return RunLoaded(project, *graph, &*conn, options);
}

}  // namespace

Result<RunSummary> RunCommand(const TransformOptions& options) {
  static const std::set<std::string> kCommands = {
      "seed", "run", "test", "build", "compile", "ls", "snapshot", "freshness", "docs"};
  if (!kCommands.count(options.command)) {
    return Status::Error(fmt::format("unknown transform command '{}'", options.command));
  }
  auto project = LoadProject(ToLoadOptions(options));  // its errors come scrubbed
  if (!project.ok()) return project.status();
  if (!options.target_path.empty()) project->target_path = options.target_path;
  auto r = RunCommandUnscrubbed(options, *project);
  if (!r.ok()) return Status::Error(project->secrets.Scrub(r.message()), r.status().code());
  return r;
}

Status Watch(const TransformOptions& options, const std::string& channel, Logger& log,
             std::stop_token stop) {
  auto project = LoadProject(ToLoadOptions(options));
  if (!project.ok()) return project.status();
  if (!options.target_path.empty()) project->target_path = options.target_path;
  auto graph = Graph::Build(*project);
  if (!graph.ok()) return Status::Error(project->secrets.Scrub(graph.message()));
  TransformOptions run_options = options;
  run_options.quiet = true;
  // A run is a chain of a few nodes: an extra thread's connection would only add latency.
  if (run_options.threads == 0) run_options.threads = 1;
  std::chrono::steady_clock::time_point artifacts_at{};  // the last run that wrote them
  // A run that cannot even start (the project's own error) is not retried.
  constexpr char kProjectError[] = "transform_project_error";
  auto work = [&](pg::LeaseHold& hold) -> Status {
    std::stop_token stop = hold.stop_token();
    run_options.fence_sql = hold.FenceSql();
    auto listener = pg::Connection::Connect(project->target.conninfo);
    if (!listener.ok()) return listener.status();
    auto conn = pg::Connection::Connect(project->target.conninfo);
    if (!conn.ok()) return conn.status();
    if (auto l = listener->Exec("LISTEN " + listener->Identifier(channel)); !l.ok()) {
      return l.status();
    }
    auto wait = [&](std::chrono::milliseconds timeout, bool* notified) -> Status {
      bool ignored = false;
      if (Status waited =
              pg::WaitForNotifications(*listener, stop, timeout, notified ? notified : &ignored);
          !waited.ok()) {
        return Status::Error("warehouse: " + waited.message(), waited.code());
      }
      return Status::Ok();
    };
    // Run once to catch up, then after every notification; what arrives during a run (a
    // burst) is drained into one more run. Woken at least every second, to see the lease.
    bool announced_wait = false;
    while (!stop.stop_requested()) {
      // Before the CDC stage has created RAW there is nothing to run: wait, quietly.
      if (std::string missing = MissingSource(*project, *conn); !missing.empty()) {
        if (!announced_wait) log.Info("transform_waiting", {{"for_source", missing}});
        announced_wait = true;
        if (Status s = wait(std::chrono::milliseconds(1000), nullptr); !s.ok()) return s;
        continue;
      }
      if (Status kept = hold.lease().Keep(); !kept.ok()) return kept;
      auto started = std::chrono::steady_clock::now();
      run_options.artifacts_on_success = started - artifacts_at >= std::chrono::seconds(1);
      if (run_options.artifacts_on_success) artifacts_at = started;
      auto r = RunLoaded(*project, *graph, &*conn, run_options);
      int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - started)
                       .count();
      if (!r.ok()) return Status::Error(r.message(), kProjectError);
      if (conn->broken())
        return Status::Error("warehouse: connection lost during a run", pg::kConnectionLost);
      if (r->ok()) {
        log.Debug("transform_run", {{"nodes", r->total}, {"ms", ms}});
      } else {
        log.Error("transform_run_failed", {{"errors", r->error},
                                           {"pass", r->pass},
                                           {"skipped", r->skip},
                                           {"ms", ms},
                                           {"hint", "see target/run_results.json"}});
      }
      hold.Healthy();
      bool notified = false;
      while (!notified && !stop.stop_requested()) {
        if (Status s = wait(std::chrono::milliseconds(1000), &notified); !s.ok()) return s;
        if (Status kept = hold.lease().Keep(); !kept.ok()) return kept;
      }
    }
    return Status::Ok();
  };
  // What the runner logs or returns never carries a secret the project was given.
  auto scrubbed_work = [&](pg::LeaseHold& hold) -> Status {
    Status s = work(hold);
    if (s.ok()) return s;
    return Status::Error(project->secrets.Scrub(s.message()), s.code());
  };
  return pg::RunUnderLease(
      {.lease = {.warehouse_url = project->target.conninfo, .stage = "transform"},
       .retryable = [&](const Status& s) { return s.code() != kProjectError; },
       .retry_event = "transform_watch_retry"},
      log, stop, scrubbed_work);
}

}  // namespace pdv::transform
