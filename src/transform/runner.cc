#include "transform/runner.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include "common/random_secret.h"
#include "transform/artifacts.h"
#include "transform/context.h"
#include "transform/hooks.h"
#include "transform/materialization.h"
#include "transform/plan.h"
#include "transform/reporter.h"
#include "transform/seed_file.h"
#include "transform/snapshot.h"
#include "transform/unit_test.h"

namespace pdv::transform {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

Runner::Runner(const Project& project, const Graph& graph, Adapter* adapter,
               const TransformOptions& options)
    : project_(project),
      graph_(graph),
      adapter_(adapter),
      options_(options),
      reporter_(options.out, options.quiet, &project.secrets) {
  generated_at_ = ArtifactTime();
}

RelationKind Runner::ExistingKind(const Node& node) {
  return adapter_ ? adapter_->ExistingKind(node.schema, node.alias) : RelationKind::kNone;
}

bool Runner::Incremental(const Node& node, RelationKind existing) const {
  return node.materialized() == "incremental" && existing != RelationKind::kNone &&
         !options_.full_refresh && !ConfigFlag(node.config, "full_refresh", false);
}

ContextOptions Runner::ExecuteOptions(const Node& node, RelationKind existing) {
  ContextOptions opts{.parse = false,
                      .incremental = Incremental(node, existing),
                      .which = options_.command,
                      .full_refresh = options_.full_refresh};
  opts.run_query = [this](const std::string& sql) { return RunQuery(sql); };
  opts.adapter = adapter_;
  opts.message = [this](const std::string& text) { reporter_.Line(text); };
  opts.warning = [this](const std::string& text) { reporter_.Warning(text); };
  return opts;
}

// run_query(), adapter.execute() and the templates' catalog lookups.
Result<QueryResult> Runner::RunQuery(const std::string& sql) {
  if (!adapter_) return Status::Error("no database connection");
  return adapter_->Query(sql);
}

Result<std::string> Runner::CompileWithCtes(const Node& node, RelationKind existing,
                                            std::vector<std::string>* seen,
                                            const ContextOptions* unit_test) {
  ContextCapture capture;
  ContextOptions opts = ExecuteOptions(node, existing);
  if (unit_test) {  // the unit test's inputs and overrides, in the model and its ephemerals
    opts.relation_overrides = unit_test->relation_overrides;
    opts.var_overrides = unit_test->var_overrides;
    opts.env_overrides = unit_test->env_overrides;
    opts.macro_overrides = unit_test->macro_overrides;
    if (unit_test->macro_overrides.count("is_incremental")) {
      opts.incremental = unit_test->macro_overrides.at("is_incremental").Truthy();
    }
  }
  jinja::ValueDict ctx = MakeContext(project_, node, opts, &capture);
  std::string sql;
  if (!node.test_macro.empty()) {
    jinja::Arguments args;
    const Node& attached = project_.nodes.at(node.attached_node);
    jinja::Value model = RelationValue(attached.database, attached.schema, attached.alias);
    if (attached.resource_type == NodeType::kModel && attached.materialized() == "ephemeral") {
      // A test of an ephemeral model reads it as a CTE, as dbt does.
      model = EphemeralValue(attached);
      capture.ephemerals.push_back(attached.unique_id);
    }
    if (node.config.contains("where") && node.config["where"].is_string()) {
      // dbt's `where` test config: the test reads the model through this filter.
      model.dict().text = fmt::format("(select * from {} where {}) dbt_subquery",
                                      *model.dict().text, node.config["where"].get<std::string>());
    }
    args.named.emplace_back("model", model);
    if (!node.column_name.empty())
      args.named.emplace_back("column_name", jinja::Value(node.column_name));
    for (const auto& [k, v] : node.test_kwargs.items) {
      jinja::Value value = v;
      if (v.is_string() &&
          (v.as_string().starts_with("ref(") || v.as_string().starts_with("source("))) {
        // The relation itself, as dbt passes it: macros read its parts.
        auto evaluated =
            project_.env->Evaluate(v.as_string(), node.defined_at, ctx, node.package_name);
        if (!evaluated.ok()) return evaluated.status();
        value = *evaluated;
      } else if (v.is_string() && (v.as_string().find("{{") != std::string::npos ||
                                   v.as_string().find("{%") != std::string::npos)) {
        // dbt renders a test argument's Jinja in the test's context.
        auto tmpl = jinja::Template::Parse(v.as_string(), node.defined_at);
        if (!tmpl.ok()) return tmpl.status();
        auto rendered = project_.env->Render(**tmpl, ctx, node.package_name);
        if (!rendered.ok()) return rendered.status();
        value = jinja::Value(*rendered);
      }
      args.named.emplace_back(k, value);
    }
    auto r = project_.env->CallMacro(node.test_macro, args, ctx, node.package_name,
                                     node.test_macro_package);
    if (!r.ok())
      return Status::Error(fmt::format("{} (test defined at {})", r.message(), node.defined_at));
    sql = r->Str();
  } else {
    auto r = project_.env->Render(*node.tmpl, ctx, node.package_name);
    if (!r.ok()) return r.status();
    sql = *r;
  }
  // Ephemeral models referenced (directly or through other ephemerals) become CTEs,
  // innermost first, each once.
  std::vector<std::pair<std::string, std::string>> ctes;
  for (const auto& id : capture.ephemerals) {
    if (std::find(seen->begin(), seen->end(), id) != seen->end()) continue;
    seen->push_back(id);
    const Node& eph = project_.nodes.at(id);
    std::vector<std::string> inner_seen = *seen;
    auto inner = CompileWithCtes(eph, RelationKind::kNone, &inner_seen, unit_test);
    if (!inner.ok()) return inner;
    // The inner model's own CTEs were injected into its SQL; hoist nothing further.
    ctes.emplace_back("__dbt__cte__" + eph.name, *inner);
  }
  return InjectCtes(sql, ctes);
}

Result<std::string> Runner::Compile(const Node& node) { return Compile(node, ExistingKind(node)); }

Result<std::string> Runner::CompileWith(const Node& node, const ContextOptions* overrides) {
  std::vector<std::string> seen;
  return CompileWithCtes(node, RelationKind::kNone, &seen, overrides);
}

Result<std::string> Runner::Compile(const Node& node, RelationKind existing) {
  std::vector<std::string> seen;
  auto r = CompileWithCtes(node, existing, &seen);
  if (r.ok()) compiled_[node.unique_id] = *r;
  return r;
}

Result<std::vector<std::string>> Runner::RenderHooks(const Node& node, const char* key,
                                                     RelationKind existing) {
  std::vector<std::string> out;
  if (!node.config.contains(key)) return out;
  ContextCapture capture;
  jinja::ValueDict ctx = MakeContext(project_, node, ExecuteOptions(node, existing), &capture);
  for (const auto& hook : node.config[key]) {
    std::string text = hook.is_string()   ? hook.get<std::string>()
                       : hook.is_object() ? hook.value("sql", "")
                                          : "";
    auto tmpl = jinja::Template::Parse(text, fmt::format("{} ({})", node.original_file_path, key));
    if (!tmpl.ok()) return tmpl.status();
    auto r = project_.env->Render(**tmpl, ctx, node.package_name);
    if (!r.ok()) return r.status();
    if (r->find_first_not_of(" \t\r\n") != std::string::npos) out.push_back(*r);
  }
  return out;
}

void Runner::WriteCompiled(const Node& node, const std::string& sql) const {
  std::error_code ec;
  fs::path p =
      fs::path(project_.target_path) / "compiled" / node.package_name / node.original_file_path;
  if (node.resource_type == NodeType::kTest && !node.test_macro.empty()) {
    p = fs::path(project_.target_path) / "compiled" / node.package_name / node.original_file_path /
        (node.name + ".sql");
  }
  fs::create_directories(p.parent_path(), ec);
  std::ofstream(p) << project_.secrets.Scrub(sql);
}

// The source line of a SQL error: the line of the compiled SQL that holds `position`,
// found verbatim in the model file when it is there, else the compiled file's line.
std::string Runner::WhereInSource(const Node& node, const std::string& statement,
                                  int position) const {
  auto it = compiled_.find(node.unique_id);
  if (position <= 0 || it == compiled_.end()) return node.original_file_path;
  size_t at = statement.find(it->second);
  if (at == std::string::npos || static_cast<size_t>(position - 1) < at)
    return node.original_file_path;
  size_t offset = static_cast<size_t>(position - 1) - at;
  const std::string& compiled = it->second;
  int line =
      1 + static_cast<int>(std::count(
              compiled.begin(),
              compiled.begin() + static_cast<long>(std::min(offset, compiled.size())), '\n'));
  size_t start = 0;
  for (int l = 1; l < line; ++l) start = compiled.find('\n', start) + 1;
  std::string text = compiled.substr(start, compiled.find('\n', start) - start);
  auto trim = [](std::string s) {
    s.erase(0, s.find_first_not_of(" \t\r"));
    s.erase(s.find_last_not_of(" \t\r") + 1);
    return s;
  };
  text = trim(text);
  if (!text.empty() && !node.raw_code.empty()) {
    std::istringstream raw(node.raw_code);
    std::string l;
    int n = 0, found = 0, matches = 0;
    while (std::getline(raw, l)) {
      ++n;
      if (trim(l) == text) {
        found = n;
        ++matches;
      }
    }
    if (matches == 1) return fmt::format("{}:{}", node.original_file_path, found);
  }
  return fmt::format("{} (at {}/compiled/{}/{}:{})", node.original_file_path,
                     fs::path(project_.target_path).filename().string(), project_.name,
                     node.original_file_path, line);
}

NodeResult Runner::Execute(const Node& node) {
  auto start = Clock::now();
  NodeResult res{.unique_id = node.unique_id};
  std::string error;
  auto materialization = MaterializationFor(
      project_, adapter_ ? adapter_->Type() : project_.target.type, node, &error);
  const bool checks =
      node.resource_type == NodeType::kTest || node.resource_type == NodeType::kUnitTest;
  if (!materialization) {
    res = ErrorResult(node, "", error);
  } else if (!adapter_) {
    res = ErrorResult(node, node.original_file_path, "no database connection");
  } else {
    // One catalog lookup per node (from the adapter's relation cache): compile, hooks and
    // the materialization share it.
    RelationKind existing = checks ? RelationKind::kNone : ExistingKind(node);
    Result<std::string> compiled = std::string();
    if (node.resource_type != NodeType::kUnitTest && node.resource_type != NodeType::kSeed) {
      compiled = Compile(node, existing);
    }
    if (!compiled.ok()) {
      res = ErrorResult(node, "", compiled.message());
    } else {
      if (node.resource_type != NodeType::kSeed) WriteCompiled(node, *compiled);
      NodeRun run{
          .node = node,
          .adapter = *adapter_,
          .compiler = *this,
          .compiled = *compiled,
          .existing = existing,
          .incremental = Incremental(node, existing),
          .full_refresh = options_.full_refresh || ConfigFlag(node.config, "full_refresh", false),
          .begin_sql = options_.begin_sql,
          .commit_sql = options_.fence_sql.empty() ? "" : options_.fence_sql + "; commit",
          .event_time_start = options_.event_time_start,
          .event_time_end = options_.event_time_end};
      res = materialization->Execute(run);
      if (node.resource_type != NodeType::kSeed) res.compiled = *compiled;
    }
  }
  res.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return res;
}

// Workers: this runner, and one more per extra thread, each with its own adapter (its own
// connection, the relation cache shared). Fewer when a connection cannot be had.
void Runner::AddWorkers(size_t steps, Workers* workers) {
  workers->all = {this};
  int threads = std::max(1, options_.threads > 0 ? options_.threads : project_.target.threads);
  threads = std::min<int>(threads, std::max<int>(1, static_cast<int>(steps)));
  for (int i = 1; i < threads && adapter_; ++i) {
    auto a = adapter_->Clone();
    if (!a.ok()) {
      reporter_.Warning(
          fmt::format("thread {}: {}; running with {} threads", i + 1, a.message(), i));
      break;
    }
    workers->adapters.push_back(std::move(*a));
    workers->extra.push_back(
        std::make_unique<Runner>(project_, graph_, workers->adapters.back().get(), options_));
    workers->all.push_back(workers->extra.back().get());
  }
}

void Runner::PrepareSchemas(const Plan& plan, bool concurrent) {
  if (!adapter_) return;
  // The relation cache: every relation of the schemas this run builds, in one query.
  if (Status s = adapter_->CacheSchemas(plan.schemas); !s.ok()) {
    reporter_.Warning("relation cache: " + s.message());
  }
  if (!concurrent) return;
  // Concurrent CREATE SCHEMA IF NOT EXISTS of one name can fail in PostgreSQL: the schemas
  // are made first, one by one, as dbt does.
  for (const auto& schema : plan.schemas) {
    StatementResult r = adapter_->Execute(adapter_->CreateSchemaSql(schema));
    if (!r.ok) reporter_.Warning(fmt::format("schema {}: {}", schema, r.error));
  }
}

// The scheduler: starts the plan's ready steps in order while a worker is free, one thread
// per node run (none with one worker); results are handled here, in the calling thread,
// one at a time. A failure skips what its step stops.
std::vector<NodeResult> Runner::ExecutePlan(
    const Plan& plan, const std::vector<Runner*>& workers, RunSummary* summary,
    std::map<std::string, int>* kinds, std::vector<std::pair<const Node*, NodeResult>>* problems) {
  struct Done {
    size_t worker;
    NodeResult result;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Done> completed;
  std::vector<std::thread> running(workers.size());
  std::vector<bool> busy(workers.size(), false);
  std::vector<NodeResult> results;
  std::map<std::string, const PlanStep*> step_of;
  for (const auto& step : plan.steps) step_of[step.id] = &step;
  std::map<std::string, std::string> n_of_by_id;
  std::set<std::string> finished, skip;
  std::vector<const PlanStep*> pending;
  for (const auto& step : plan.steps) pending.push_back(&step);
  int index = 0;
  size_t in_flight = 0;
  auto ready = [&](const PlanStep* step) {
    return std::all_of(step->waits_for.begin(), step->waits_for.end(),
                       [&](const std::string& w) { return finished.count(w) > 0; });
  };
  auto handle = [&](const std::string& id, NodeResult r) {
    const Node& node = project_.nodes.at(id);
    reporter_.Finished(n_of_by_id[id], node, r);
    bool failed = r.status == NodeStatus::kFail || r.status == NodeStatus::kError;
    if (r.status == NodeStatus::kSuccess || r.status == NodeStatus::kPass) summary->pass++;
    if (r.status == NodeStatus::kWarn) summary->warn++;
    if (failed) summary->error++;
    if (r.status == NodeStatus::kWarn || failed) problems->emplace_back(&node, r);
    if (failed) skip.insert(step_of[id]->stops.begin(), step_of[id]->stops.end());
    finished.insert(id);
    results.push_back(std::move(r));
  };
  while (!pending.empty() || in_flight > 0) {
    // Start what is ready, in order, on free workers; skipped nodes finish at once.
    for (auto it = pending.begin(); it != pending.end();) {
      const std::string id = (*it)->id;
      if (!ready(*it)) {
        ++it;
        continue;
      }
      const Node& node = project_.nodes.at(id);
      bool skipped = skip.count(id) > 0;
      auto free_worker = std::find(busy.begin(), busy.end(), false);
      if (!skipped && free_worker == busy.end()) break;  // wait for a worker
      it = pending.erase(it);
      n_of_by_id[id] = fmt::format("{} of {}", ++index, plan.steps.size());
      (*kinds)[ConsoleReporter::Kind(node)]++;
      if (skipped) {
        reporter_.Skipped(n_of_by_id[id], node);
        summary->skip++;
        finished.insert(id);
        results.push_back(NodeResult{
            .unique_id = id, .status = NodeStatus::kSkipped, .message = "an upstream node failed"});
        it = pending.begin();  // a skip may make others ready
        continue;
      }
      reporter_.Started(n_of_by_id[id], node);
      size_t w = static_cast<size_t>(free_worker - busy.begin());
      busy[w] = true;
      ++in_flight;
      Runner* worker = workers[w];
      auto execute = [&mu, &cv, &completed, w, worker, &node] {
        NodeResult r = worker->Execute(node);
        r.thread = static_cast<int>(w) + 1;
        std::lock_guard<std::mutex> lock(mu);
        completed.push_back(Done{w, std::move(r)});
        cv.notify_one();
      };
      // One worker: in this thread (a thread per node cost a run every few ms its
      // creation and two wake-ups).
      if (workers.size() == 1) {
        execute();
      } else {
        running[w] = std::thread(execute);
      }
    }
    if (in_flight == 0) {
      if (!pending.empty() && std::none_of(pending.begin(), pending.end(), ready)) {
        reporter_.Error(fmt::format("{} nodes wait for nodes that never run", pending.size()));
        break;  // cannot happen with a DAG; never spin
      }
      continue;
    }
    std::vector<Done> done;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return !completed.empty(); });
      done.swap(completed);
    }
    for (auto& d : done) {
      if (running[d.worker].joinable()) running[d.worker].join();
      busy[d.worker] = false;
      --in_flight;
      std::string id = d.result.unique_id;  // before the result is moved
      handle(id, std::move(d.result));
    }
  }
  return results;
}

RunSummary Runner::Run(const std::string& command, const std::set<std::string>& selected) {
  auto started = Clock::now();
  reporter_.Header(project_);
  const Plan plan = MakePlan(project_, graph_, selected);
  Workers workers;
  AddWorkers(plan.steps.size(), &workers);
  PrepareSchemas(plan, workers.all.size() > 1);
  reporter_.Concurrency(workers.all.size(), project_.target.name);
  RunSummary summary;
  summary.total = static_cast<int>(plan.steps.size());
  std::map<std::string, int> kinds;  // "table model" -> n
  std::vector<std::pair<const Node*, NodeResult>> problems;
  // on-run-start: a failure runs no node (each is skipped), as on dbt-core.
  HookRun hooks{.project = project_,
                .adapter = adapter_,
                .options = ExecuteOptions(Node(), RelationKind::kNone),
                .schemas = plan.schemas,
                .line = [this](const std::string& l) { reporter_.Line(l); }};
  Status started_ok =
      adapter_ ? RunProjectHooks(project_.on_run_start, "on-run-start", hooks) : Status::Ok();
  std::vector<NodeResult> results;
  if (started_ok.ok()) {
    results = ExecutePlan(plan, workers.all, &summary, &kinds, &problems);
  } else {
    reporter_.Error(started_ok.message());
    summary.error++;
    for (const auto& step : plan.steps) {
      summary.skip++;
      results.push_back(NodeResult{.unique_id = step.id,
                                   .status = NodeStatus::kSkipped,
                                   .message = "an on-run-start hook failed"});
    }
  }
  if (adapter_ && started_ok.ok()) {
    hooks.results = &results;
    if (Status s = RunProjectHooks(project_.on_run_end, "on-run-end", hooks); !s.ok()) {
      reporter_.Error(s.message());
      summary.error++;
    }
  }
  // The manifest shows what every worker compiled.
  for (const auto& w : workers.extra) compiled_.insert(w->compiled_.begin(), w->compiled_.end());
  double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  reporter_.Summary(kinds, elapsed, summary, problems);
  if (!options_.artifacts_on_success && summary.ok()) return summary;
  if (Status s = WriteRunResults(results, elapsed, command); !s.ok())
    reporter_.Warning(s.message());
  if (Status s = WriteManifest(); !s.ok()) reporter_.Warning(s.message());
  return summary;
}

Status Runner::WriteManifest() const {
  // Without a connection (compile), the profile's type: the adapter's it would be.
  return pdv::transform::WriteManifest(project_, graph_, compiled_, generated_at_,
                                       adapter_ ? adapter_->Type() : project_.target.type);
}

Status Runner::WriteRunResults(const std::vector<NodeResult>& results, double elapsed,
                               const std::string& command) const {
  return pdv::transform::WriteRunResults(project_, options_, results, elapsed, command);
}

}  // namespace pdv::transform
