// pdv transform run-operation (run_operation.h).

#include "transform/run_operation.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "transform/context.h"
#include "transform/project_loader.h"
#include "transform/runner.h"

namespace pdv::transform {
namespace {

// --args as the macro's named arguments.
Result<jinja::Arguments> MacroArguments(const std::string& yaml) {
  jinja::Arguments args;
  if (yaml.find_first_not_of(" \t\r\n") == std::string::npos) return args;
  YAML::Node y;
  try {
    y = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return Status::Error(fmt::format("--args: invalid YAML at line {}, column {}: {}",
                                     e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  if (y.IsNull()) return args;
  if (!y.IsMap()) return Status::Error("--args: expected a YAML mapping ('{name: value}')");
  jinja::Value dict = JsonToValue(project_internal::YamlToJson(y));
  for (const auto& [k, v] : dict.dict().items) args.named.emplace_back(k, v);
  return args;
}

}  // namespace

Status RunOperation(const Project& project, const Graph& graph, Adapter& adapter,
                    const TransformOptions& options) {
  const std::string& full = options.macro;
  size_t dot = full.find('.');
  std::string package = dot == std::string::npos ? "" : full.substr(0, dot);
  std::string name = dot == std::string::npos ? full : full.substr(dot + 1);
  if (name.empty()) return Status::Error("a macro name is required");
  const jinja::Environment& env = *project.env;
  // dbt's lookup for an operation: the named package's, else the root project's, then
  // each package's, then dbt's own.
  std::vector<std::string> search;
  if (!package.empty()) {
    if (package != project.name && package != jinja::Environment::kGlobalPackage &&
        !project.IsPackage(package)) {
      return Status::Error(fmt::format(
          "{}: no package named '{}' (is it in packages.yml, and deps run?)", full, package));
    }
    search.push_back(package);
  } else {
    search.push_back(project.name);
    for (const auto& p : project.packages) search.push_back(p.name);
    search.push_back(jinja::Environment::kGlobalPackage);
  }
  std::string macro_package;
  for (const auto& p : search) {
    if (env.HasMacro(p, name)) {
      macro_package = p;
      break;
    }
  }
  if (macro_package.empty()) {
    return Status::Error(package.empty()
                             ? fmt::format("no macro named '{}' in any package", name)
                             : fmt::format("package '{}' has no macro named '{}'", package, name));
  }
  auto args = MacroArguments(options.macro_args);
  if (!args.ok()) return args.status();
  TransformOptions run_options = options;
  run_options.command = "run-operation";
  Runner runner(project, graph, &adapter, run_options);
  ContextOptions context = runner.ExecuteOptions(Node(), RelationKind::kNone);
  Node operation;
  operation.package_name = project.name;
  operation.name = name;
  operation.unique_id = fmt::format("macro.{}.{}", macro_package, name);
  ContextCapture capture;
  jinja::ValueDict ctx = MakeContext(project, operation, context, &capture);
  auto transaction = AdapterTransaction::Begin(adapter, options.begin_sql);
  if (!transaction.ok()) return transaction.status();
  auto r = env.CallMacro(name, *args, ctx, project.name, macro_package);
  if (!r.ok()) {
    return Status::Error(
        fmt::format("Encountered an error while running operation {}: {}", full, r.message()));
  }
  if (Status s = transaction->Commit(); !s.ok()) {
    return Status::Error(fmt::format("{}: commit: {}", full, s.message()));
  }
  return Status::Ok();
}

}  // namespace pdv::transform
