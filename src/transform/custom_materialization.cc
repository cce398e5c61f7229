#include "transform/custom_materialization.h"

#include <fmt/format.h>

#include <memory>
#include <set>
#include <utility>
#include <vector>

namespace pdv::transform {

using jinja::Value;
using jinja::ValueDict;
using jinja::ValueList;

std::optional<MaterializationMacro> FindMaterializationMacro(const Project& project,
                                                             const std::string& name,
                                                             const std::string& adapter_type) {
  std::vector<std::string> packages{project.name};
  // A package's block does not replace a built-in materialization (dbt's default since
  // 1.8, require_explicit_package_overrides_for_builtin_materializations); the root's does.
  static const std::set<std::string> kBuiltIn = {
      "view",     "table", "incremental", "materialized_view", "ephemeral", "seed",
      "snapshot", "test",  "unit"};
  if (!kBuiltIn.count(name)) {
    for (const auto& p : project.packages) packages.push_back(p.name);
  }
  for (const std::string& adapter : {adapter_type, std::string("default")}) {
    std::string macro = fmt::format("materialization_{}_{}", name, adapter);
    for (const auto& package : packages) {
      if (project.env->HasMacro(package, macro)) return MaterializationMacro{package, macro};
    }
  }
  return std::nullopt;
}

namespace {

// dbt's hooks as materializations see them: {sql, transaction, index}. The runner has
// rendered them; every one runs inside the node's transaction.
Value HookList(const std::vector<std::string>& hooks) {
  ValueList out;
  for (size_t i = 0; i < hooks.size(); ++i) {
    ValueDict hook;
    hook.text = hooks[i];
    hook.Set("sql", Value(hooks[i]));
    hook.Set("transaction", Value(true));
    hook.Set("index", Value(static_cast<int64_t>(i)));
    out.emplace_back(std::move(hook));
  }
  return Value(std::move(out));
}

std::string Field(const Value& v, const char* key) {
  if (!v.is_dict()) return "";
  const Value* f = v.dict().Find(key);
  return f && !f->is_none() && !f->is_undefined() ? f->Str() : "";
}

}  // namespace

NodeResult CustomMaterialization::Execute(NodeRun& run) {
  const Node& node = run.node;
  const Project& project = run.compiler.project();
  auto pre = run.compiler.RenderHooks(node, "pre_hook", run.existing);
  auto post = run.compiler.RenderHooks(node, "post_hook", run.existing);
  if (!pre.ok() || !post.ok())
    return ErrorResult(node, "", !pre.ok() ? pre.message() : post.message());

  ContextOptions opts{.parse = false,
                      .incremental = run.incremental,
                      .which = "run",
                      .full_refresh = run.full_refresh};
  Adapter& adapter = run.adapter;
  opts.run_query = [&adapter](const std::string& sql) { return adapter.Query(sql); };
  opts.adapter = &adapter;
  ContextCapture capture;
  ValueDict ctx = MakeContext(project, node, opts, &capture);
  ctx.Set("sql", Value(run.compiled));
  ctx.Set("compiled_code", Value(run.compiled));
  ctx.Set("pre_hooks", HookList(*pre));
  ctx.Set("post_hooks", HookList(*post));

  auto dropped = DroppedViews::Before(run);
  if (!dropped.ok()) return ErrorResult(node, node.original_file_path, dropped.message());
  auto begun = AdapterTransaction::Begin(adapter, run.begin_sql);
  if (!begun.ok()) return ErrorResult(node, node.original_file_path, begun.message());
  auto txn = std::make_unique<AdapterTransaction>(std::move(*begun));
  auto returned = project.env->CallMacro(macro_.macro, jinja::Arguments{}, ctx, node.package_name,
                                         macro_.package);
  // What the macro changed is rolled back on failure; the cache (told of drops and
  // renames as they ran) is read again from the catalog for the node's schema.
  auto relist = [&] { (void)adapter.CacheSchemas({node.schema}); };
  if (!returned.ok()) {
    txn.reset();  // rolls back
    relist();
    return ErrorResult(node, "", returned.message());
  }
  std::vector<std::pair<RelationRef, RelationKind>> built;
  if (returned->is_dict() && returned->dict().Find("relations")) {
    const Value& relations = *returned->dict().Find("relations");
    if (!relations.is_list()) {
      txn.reset();
      relist();
      return ErrorResult(node, macro_.macro,
                         "the 'relations' key of a materialization's return must be a list");
    }
    for (const auto& r : relations.list()) {
      RelationRef ref{Field(r, "schema"), Field(r, "identifier")};
      built.emplace_back(ref,
                         Field(r, "type") == "view" ? RelationKind::kView : RelationKind::kTable);
    }
  } else {
    // A materialization that returns nothing: dbt takes it to have made `this` (a table).
    built.emplace_back(RelationRef{node.schema, node.alias}, RelationKind::kTable);
  }

  NodeResult res{.unique_id = node.unique_id};
  if (const Value* load = ctx.Find("load_result"); load && load->is_callable()) {
    jinja::Arguments args;
    args.positional.emplace_back("main");
    Value main = load->function()(args);
    if (main.is_dict()) {
      if (const Value* response = main.dict().Find("response"); response && response->is_dict()) {
        res.adapter_message = Field(*response, "_message");
        if (const Value* rows = response->dict().Find("rows_affected"); rows && rows->is_int())
          res.rows_affected = rows->as_int();
      }
    }
  }
  Status committed = txn->Commit(run.commit_sql);
  txn.reset();
  if (Status s = std::move(committed); !s.ok()) {
    relist();
    res = ErrorResult(node, node.original_file_path, s.message());
    if (adapter.ConnectionLost(s)) res.message += " [connection lost]";
    return res;
  }
  dropped->Forget(adapter);
  for (const auto& [ref, kind] : built) adapter.CacheRelation(ref.schema, ref.identifier, kind);
  res.status = NodeStatus::kSuccess;
  return res;
}

}  // namespace pdv::transform
