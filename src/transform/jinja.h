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

// Macros shared by every render (a project's macros/ and the built-in ones) and the
// rendering itself.
class Environment {
 public:
  // Registers every top-level {% macro %} (and dbt's {% test %} as test_<name>) of
  // `tmpl`; a later definition of a name replaces the earlier one (the project overrides
  // built-ins such as generate_schema_name). Returns the names defined.
  std::vector<std::string> AddMacros(const std::shared_ptr<const Template>& tmpl);
  bool HasMacro(const std::string& name) const { return macros_.count(name) > 0; }

  // Renders `tmpl` with `globals` (dbt's context for one node). Errors read
  // "<template name>:<line>: <what>".
  Result<std::string> Render(const Template& tmpl, const ValueDict& globals) const;
  // Calls macro `name` with `args` under `globals`; returns its return() value or output.
  Result<Value> CallMacro(const std::string& name, const Arguments& args,
                          const ValueDict& globals) const;

 private:
  friend class Renderer;
  struct MacroDef {
    std::shared_ptr<const Template> tmpl;
    const Node* node;
  };
  std::map<std::string, MacroDef> macros_;
};

}  // namespace pdv::transform::jinja
