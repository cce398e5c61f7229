#include "transform/hooks.h"

#include <fmt/format.h>

#include <chrono>

#include "transform/context.h"

namespace pdv::transform {
namespace {

using jinja::Value;
using jinja::ValueDict;
using jinja::ValueList;

// dbt's RunResult as templates read it in on-run-end.
Value ResultValue(const Project& project, const NodeResult& r) {
  ValueDict d;
  auto node = project.nodes.find(r.unique_id);
  d.Set("node", node == project.nodes.end() ? Value() : NodeValue(node->second));
  d.Set("unique_id", Value(r.unique_id));
  d.Set("status", Value(std::string(StatusText(r.status))));
  d.Set("message", r.message.empty() ? Value() : Value(r.message));
  d.Set("execution_time", Value(r.seconds));
  d.Set("failures", r.failures < 0 ? Value() : Value(r.failures));
  d.Set("thread_id", Value(fmt::format("Thread-{}", r.thread)));
  ValueDict response;
  response.Set("_message", Value(r.adapter_message));
  response.Set("code", Value(r.adapter_message.substr(0, r.adapter_message.find(' '))));
  response.Set("rows_affected", r.rows_affected < 0 ? Value() : Value(r.rows_affected));
  d.Set("adapter_response", Value(std::move(response)));
  d.Set("timing", Value(ValueList{}));
  return Value(std::move(d));
}

}  // namespace

Status RunProjectHooks(const std::vector<ProjectHook>& hooks, const char* kind, HookRun& run) {
  if (hooks.empty()) return Status::Ok();
  run.line(fmt::format("Running {} {} hook{}", hooks.size(), kind, hooks.size() == 1 ? "" : "s"));
  ValueList schemas, database_schemas;
  for (const auto& s : run.schemas) {
    schemas.push_back(Value(s));
    database_schemas.push_back(Value(ValueList{Value(run.project.target.database), Value(s)}));
  }
  ValueList results;
  if (run.results) {
    for (const auto& r : *run.results) results.push_back(ResultValue(run.project, r));
  }
  for (size_t i = 0; i < hooks.size(); ++i) {
    const ProjectHook& hook = hooks[i];
    auto started = std::chrono::steady_clock::now();
    std::string name = fmt::format("{}.{}.{}", hook.package, kind, hook.index);
    Node none;
    none.package_name = hook.package;
    none.name = name;
    ContextCapture capture;
    ValueDict ctx = MakeContext(run.project, none, run.options, &capture);
    ctx.Set("schemas", Value(schemas));
    ctx.Set("database_schemas", Value(database_schemas));
    ctx.Set("results", Value(results));
    auto tmpl = jinja::Template::Parse(hook.sql, hook.where);
    if (!tmpl.ok()) return Status::Error(fmt::format("{}: {}", hook.where, tmpl.message()));
    auto sql = run.project.env->Render(**tmpl, ctx, hook.package);
    if (!sql.ok())
      return Status::Error(fmt::format("{}: {} hook: {}", hook.where, kind, sql.message()));
    std::string status = "OK";
    if (sql->find_first_not_of(" \t\r\n;") != std::string::npos) {
      StatementResult r = run.adapter->Execute(*sql);
      if (!r.ok) {
        run.line(fmt::format("{} of {} ERROR hook: {}", i + 1, hooks.size(), name));
        return Status::Error(fmt::format("{}: {} hook failed: {}", hook.where, kind, r.error));
      }
      status = r.command_status.empty() ? "OK" : r.command_status;
    }
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    run.line(fmt::format("{} of {} OK hook: {} [{} in {:.2f}s]", i + 1, hooks.size(), name, status,
                         seconds));
  }
  return Status::Ok();
}

}  // namespace pdv::transform
