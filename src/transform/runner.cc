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
#include "transform/materialization.h"
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
    if (attached.resource_type == "model" && attached.materialized() == "ephemeral") {
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
  if (node.resource_type == "test" && !node.test_macro.empty()) {
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
  auto materialization = MaterializationFor(node, &error);
  const bool checks = node.resource_type == "test" || node.resource_type == "unit_test";
  if (!materialization) {
    res = ErrorResult(node, "", error);
  } else if (!adapter_) {
    res = ErrorResult(node, node.original_file_path, "no database connection");
  } else {
    // One catalog lookup per node (from the adapter's relation cache): compile, hooks and
    // the materialization share it.
    RelationKind existing = checks ? RelationKind::kNone : ExistingKind(node);
    Result<std::string> compiled = std::string();
    if (node.resource_type != "unit_test" && node.resource_type != "seed") {
      compiled = Compile(node, existing);
    }
    if (!compiled.ok()) {
      res = ErrorResult(node, "", compiled.message());
    } else {
      if (node.resource_type != "seed") WriteCompiled(node, *compiled);
      NodeRun run{
          .node = node,
          .adapter = *adapter_,
          .compiler = *this,
          .compiled = *compiled,
          .existing = existing,
          .incremental = Incremental(node, existing),
          .full_refresh = options_.full_refresh || ConfigFlag(node.config, "full_refresh", false),
          .begin_sql = options_.begin_sql,
          .commit_sql = options_.fence_sql.empty() ? "" : options_.fence_sql + "; commit"};
      res = materialization->Execute(run);
      if (node.resource_type != "seed") res.compiled = *compiled;
    }
  }
  res.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return res;
}

// Dependencies first; among the nodes ready to run, tests before models (so that a failing
// test stops its model's dependants in `build`), then by unique id.
std::vector<std::string> Runner::ExecutionOrder(const std::set<std::string>& selected) const {
  // Ordered over the whole graph (a selected model may depend on an unselected one through
  // an ephemeral), then filtered to the selection.
  std::map<std::string, int> pending;
  for (const auto& [id, n] : project_.nodes)
    pending[id] = static_cast<int>(graph_.parents(id).size());
  auto rank = [&](const std::string& id) {
    const std::string& type = project_.nodes.at(id).resource_type;
    return std::make_pair(type == "unit_test" ? 0 : type == "test" ? 1 : 2, id);
  };
  std::set<std::pair<int, std::string>> ready;
  for (const auto& [id, n] : pending) {
    if (n == 0) ready.insert(rank(id));
  }
  std::vector<std::string> order;
  while (!ready.empty()) {
    std::string id = ready.begin()->second;
    ready.erase(ready.begin());
    if (selected.count(id)) order.push_back(id);
    for (const auto& c : graph_.children(id)) {
      if (--pending[c] == 0) ready.insert(rank(c));
    }
  }
  return order;
}

RunSummary Runner::Run(const std::string& command, const std::set<std::string>& selected) {
  auto started = Clock::now();
  reporter_.Header(project_);
  std::vector<std::string> order = ExecutionOrder(selected);
  // Workers: this runner, and one more per extra thread, each with its own adapter (its
  // own connection, the relation cache shared).
  std::vector<std::unique_ptr<Adapter>> extra_adapters;
  std::vector<Runner*> workers{this};
  std::vector<std::unique_ptr<Runner>> extra_workers;
  int threads = std::max(1, options_.threads > 0 ? options_.threads : project_.target.threads);
  threads = std::min<int>(threads, std::max<int>(1, static_cast<int>(order.size())));
  for (int i = 1; i < threads && adapter_; ++i) {
    auto a = adapter_->Clone();
    if (!a.ok()) {
      fmt::print(stderr, "warning: thread {}: {}; running with {} threads\n", i + 1,
                 project_.secrets.Scrub(a.message()), i);
      break;
    }
    extra_adapters.push_back(std::move(*a));
    extra_workers.push_back(
        std::make_unique<Runner>(project_, graph_, extra_adapters.back().get(), options_));
    workers.push_back(extra_workers.back().get());
  }
  std::set<std::string> schemas;
  for (const auto& id : order) {
    const Node& n = project_.nodes.at(id);
    bool builds = (n.resource_type == "model" && n.materialized() != "ephemeral") ||
                  n.resource_type == "seed" || n.resource_type == "snapshot";
    if (builds) schemas.insert(n.schema);
  }
  if (adapter_) {
    // The relation cache: every relation of the schemas this run builds, in one query.
    if (Status s = adapter_->CacheSchemas({schemas.begin(), schemas.end()}); !s.ok()) {
      fmt::print(stderr, "warning: relation cache: {}\n", project_.secrets.Scrub(s.message()));
    }
  }
  if (workers.size() > 1) {
    // Concurrent CREATE SCHEMA IF NOT EXISTS of one name can fail in PostgreSQL: the
    // schemas are made first, one by one, as dbt does.
    for (const auto& schema : schemas) {
      StatementResult r = adapter_->Execute(adapter_->CreateSchemaSql(schema));
      if (!r.ok)
        fmt::print(stderr, "warning: schema {}: {}\n", schema, project_.secrets.Scrub(r.error));
    }
  }
  reporter_.Concurrency(workers.size(), project_.target.name);
  RunSummary summary;
  summary.total = static_cast<int>(order.size());
  std::vector<NodeResult> results;
  std::set<std::string> skip, failed_nodes;
  std::map<std::string, int> kinds;  // "table model" -> n
  std::vector<std::pair<const Node*, NodeResult>> problems;

  // What each selected node waits for: the selected nodes it depends on (through
  // unselected ones), and, as in dbt build, selected tests that vouch for its inputs (unit
  // tests of itself; data tests of its ancestors whose every input is one of its
  // ancestors), so that a failing test stops it before it starts. A test that also reads a
  // node outside its ancestry does not hold it back (dbt's add_test_edges): a snapshot of
  // staging need not wait for a test comparing staging with a mart built from it.
  std::set<std::string> chosen(order.begin(), order.end());
  std::map<std::string, std::set<std::string>> ancestors;
  auto ancestors_of = [&](const std::string& id) -> const std::set<std::string>& {
    auto it = ancestors.find(id);
    if (it == ancestors.end()) it = ancestors.emplace(id, graph_.Ancestors(id)).first;
    return it->second;
  };
  std::map<std::string, std::set<std::string>> waits_for;
  std::map<std::string, std::vector<std::string>> tests_of;  // node -> its selected tests
  for (const auto& id : order) {
    const Node& n = project_.nodes.at(id);
    if (n.resource_type == "unit_test") tests_of[n.attached_node].push_back(id);
    if (n.resource_type == "test") {
      for (const auto& p : graph_.parents(id)) tests_of[p].push_back(id);
    }
  }
  for (const auto& id : order) {
    const Node& n = project_.nodes.at(id);
    std::set<std::string>& waits = waits_for[id];
    std::vector<std::string> stack(graph_.parents(id).begin(), graph_.parents(id).end());
    std::set<std::string> seen;
    while (!stack.empty()) {
      std::string p = stack.back();
      stack.pop_back();
      if (!seen.insert(p).second) continue;
      if (chosen.count(p)) {
        waits.insert(p);
      } else {
        stack.insert(stack.end(), graph_.parents(p).begin(), graph_.parents(p).end());
      }
    }
    if (n.resource_type != "test" && n.resource_type != "unit_test") {
      const std::set<std::string>& upstream = ancestors_of(id);
      for (const auto& p : upstream) {
        auto tests = tests_of.find(p);
        if (tests == tests_of.end()) continue;
        for (const auto& t : tests->second) {
          if (project_.nodes.at(t).resource_type != "test") continue;
          const auto& inputs = graph_.parents(t);
          if (std::all_of(inputs.begin(), inputs.end(),
                          [&](const std::string& i) { return upstream.count(i) > 0; })) {
            waits.insert(t);
          }
        }
      }
      for (const auto& t : tests_of[id]) {
        if (project_.nodes.at(t).resource_type == "unit_test") waits.insert(t);
      }
    }
  }

  // The scheduler: start ready nodes in `order` while a worker is free; one thread per
  // node run; results are handled here, in the calling thread, one at a time.
  struct Done {
    size_t worker;
    NodeResult result;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Done> completed;
  std::vector<std::thread> running(workers.size());
  std::vector<bool> busy(workers.size(), false);
  std::map<std::string, std::string> n_of_by_id;
  std::set<std::string> finished;
  std::vector<std::string> pending = order;
  int index = 0;
  size_t in_flight = 0;
  auto handle = [&](const std::string& id, NodeResult r) {
    const Node& node = project_.nodes.at(id);
    const std::string& n_of = n_of_by_id[id];
    reporter_.Finished(n_of, node, r);
    bool failed = r.status == NodeStatus::kFail || r.status == NodeStatus::kError;
    if (r.status == NodeStatus::kSuccess || r.status == NodeStatus::kPass) summary.pass++;
    if (r.status == NodeStatus::kWarn) summary.warn++;
    if (failed) summary.error++;
    if (r.status == NodeStatus::kWarn || failed) problems.emplace_back(&node, r);
    if (failed) {
      // The dependants of a failed model, or of the model a failed test checks, are
      // skipped (their tests too, below); other tests of the same model still run.
      failed_nodes.insert(id);
      std::set<std::string> roots{id};
      if (node.resource_type == "test") roots = graph_.parents(id);
      // A failed unit test stops its model (dbt build), not the model's inputs.
      if (node.resource_type == "unit_test") {
        roots = {node.attached_node};
        skip.insert(node.attached_node);
      }
      for (const auto& root : roots) {
        for (const auto& d : graph_.Descendants(root)) {
          if (project_.nodes.at(d).resource_type != "test") skip.insert(d);
        }
      }
    }
    finished.insert(id);
    results.push_back(std::move(r));
  };
  while (!pending.empty() || in_flight > 0) {
    // Start what is ready, in order, on free workers; skipped nodes finish at once.
    for (auto it = pending.begin(); it != pending.end();) {
      const std::string id = *it;
      bool ready = std::all_of(waits_for[id].begin(), waits_for[id].end(),
                               [&](const std::string& w) { return finished.count(w) > 0; });
      if (!ready) {
        ++it;
        continue;
      }
      const Node& node = project_.nodes.at(id);
      const bool is_test = node.resource_type == "test" || node.resource_type == "unit_test";
      bool parent_failed = false;
      if (is_test) {
        for (const auto& p : graph_.parents(id))
          parent_failed |= skip.count(p) > 0 || failed_nodes.count(p) > 0;
      }
      bool skipped = skip.count(id) || parent_failed;
      auto free_worker = std::find(busy.begin(), busy.end(), false);
      if (!skipped && free_worker == busy.end()) break;  // wait for a worker
      it = pending.erase(it);
      n_of_by_id[id] = fmt::format("{} of {}", ++index, order.size());
      kinds[ConsoleReporter::Kind(node)]++;
      if (skipped) {
        reporter_.Skipped(n_of_by_id[id], node);
        summary.skip++;
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
      if (!pending.empty() && std::none_of(pending.begin(), pending.end(), [&](const auto& id) {
            return std::all_of(waits_for[id].begin(), waits_for[id].end(),
                               [&](const std::string& w) { return finished.count(w) > 0; });
          })) {
        fmt::print(stderr, "error: {} nodes wait for nodes that never run\n", pending.size());
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
  // The manifest shows what every worker compiled.
  for (const auto& w : extra_workers) compiled_.insert(w->compiled_.begin(), w->compiled_.end());
  double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  reporter_.Summary(kinds, elapsed, summary, problems);
  if (!options_.artifacts_on_success && summary.ok()) return summary;
  if (Status s = WriteRunResults(results, elapsed, command); !s.ok()) {
    fmt::print(stderr, "warning: {}\n", project_.secrets.Scrub(s.message()));
  }
  if (Status s = WriteManifest(); !s.ok())
    fmt::print(stderr, "warning: {}\n", project_.secrets.Scrub(s.message()));
  return summary;
}

Status Runner::WriteManifest() const {
  return pdv::transform::WriteManifest(project_, graph_, compiled_, generated_at_);
}

Status Runner::WriteRunResults(const std::vector<NodeResult>& results, double elapsed,
                               const std::string& command) const {
  return pdv::transform::WriteRunResults(project_, options_, results, elapsed, command);
}

}  // namespace pdv::transform
