#pragma once

// The Jinja subset that dbt projects use, rendered natively: {{ }}, {% set/if/for/macro/do
// %}, {# #}, whitespace control, literals, operators, filters, tests, macros. Anything
// outside it is an error naming file, line and construct; nothing passes through silently.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "transform/jinja_value.h"

namespace pdv::transform::jinja {

struct Node;

// A parsed template (keeps its source name for error messages).
class Template {
 public:
  static Result<std::shared_ptr<const Template>> Parse(const std::string& source,
                                                       const std::string& name);
  ~Template();
  const std::string& name() const { return name_; }
  const std::vector<std::unique_ptr<Node>>& nodes() const { return nodes_; }

 private:
  Template() = default;
  std::string name_;
  std::vector<std::unique_ptr<Node>> nodes_;
};

// What a callable sees of the render that calls it.
class MacroScope {
 public:
  virtual ~MacroScope() = default;
  // Macro `name` of `package` ("dbt": the built-in global project) as a callable, or
  // Undefined.
  virtual Value FindMacro(const std::string& package, const std::string& name) = 0;
  // Macro `name` by dbt's search order for an unqualified name, or Undefined.
  virtual Value FindMacro(const std::string& name) = 0;
};

// Macros shared by every render, by package (the root project, its installed packages and
// dbt's global project), and the rendering itself.
//
// An unqualified macro name resolves as in dbt: the package of the macro making the call,
// then the node's package, then the root project, then the global project (so the root
// project overrides built-ins such as generate_schema_name). `<package>.<macro>` names one
// package's macro.
class Environment {
 public:
  static constexpr char kGlobalPackage[] = "dbt";

  explicit Environment(std::string root_package = "") : root_(std::move(root_package)) {}

  // Registers every top-level {% macro %} (and dbt's {% test %} as test_<name>) of `tmpl`
  // under `package` ("": the root project); a later definition of a name in one package
  // replaces the earlier one. Returns the names defined.
  std::vector<std::string> AddMacros(const std::shared_ptr<const Template>& tmpl,
                                     const std::string& package = "");
  bool HasMacro(const std::string& package, const std::string& name) const;
  bool HasPackage(const std::string& package) const { return packages_.count(package) > 0; }
  const std::string& root_package() const { return root_; }

  // Renders `tmpl` with `globals` (dbt's context for one node of `package`, "": root).
  // Errors read "<template name>:<line>: <what>".
  Result<std::string> Render(const Template& tmpl, const ValueDict& globals,
                             const std::string& package = "") const;
  // Evaluates one expression (`ref('orders')` in a test's arguments) to its value.
  Result<Value> Evaluate(const std::string& expression, const std::string& where,
                         const ValueDict& globals, const std::string& package = "") const;
  // Calls macro `name` of `macro_package`, or found by the search order from the node's
  // `package` when "", with `args` under `globals`; returns its return() value or output.
  Result<Value> CallMacro(const std::string& name, const Arguments& args, const ValueDict& globals,
                          const std::string& package = "",
                          const std::string& macro_package = "") const;

 private:
  friend class Renderer;
  struct MacroDef {
    std::shared_ptr<const Template> tmpl;
    const Node* node;
    std::string package;
  };
  const MacroDef* Find(const std::string& package, const std::string& name) const;
  // The search order for an unqualified name called from `macro_package` in a node of
  // `node_package`.
  const MacroDef* Search(const std::string& macro_package, const std::string& node_package,
                         const std::string& name) const;

  std::string root_;
  std::map<std::string, std::map<std::string, MacroDef>> packages_;
};

}  // namespace pdv::transform::jinja
