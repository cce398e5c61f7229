#pragma once

// dbt's node selection as dbt-core evaluates it: a selection is a tree of criteria
// (`method:value` with graph operators `+`, `n+`, `@`) combined by union (space),
// intersection (comma) and difference (--exclude, YAML `exclude:`). Each criterion
// selects tests and unit tests indirectly (eager: any parent selected; cautious: all;
// buildable: all parents selected or upstream of the selection; empty: none), and
// --exclude always removes eagerly, so excluding a model removes its tests too.
// Named YAML selectors come from the project's selectors.yml (--selector, `default:`).

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "transform/graph.h"
#include "transform/project.h"

namespace pdv::transform {

enum class IndirectSelection { kEager, kCautious, kBuildable, kEmpty };

// "eager", "cautious", "buildable", "empty".
Result<IndirectSelection> ParseIndirectSelection(const std::string& text);

struct SelectionSpec {
  enum class Kind { kCriterion, kUnion, kIntersection, kDifference };
  Kind kind = Kind::kCriterion;
  // A criterion.
  std::string method;  // "" until resolved: fqn, path or file by the value's shape
  std::string value;
  int parents_depth = 0;                      // 0: no parents, -1: all
  int children_depth = 0;                     // 0: no children, -1: all
  bool childrens_parents = false;             // @
  std::optional<IndirectSelection> indirect;  // unset: the invocation's
  // A composite: union, intersection, or parts[0] minus the union of the rest.
  std::vector<SelectionSpec> parts;
  std::string raw;  // as written, for messages
};

// One CLI criterion ("+tag:nightly", "2+orders+1", "@source:raw").
Result<SelectionSpec> ParseCriterion(const std::string& text);

// --select and --exclude as dbt's parse_difference: a union of intersections each; no
// --select means every node; the exclusion is eager.
Result<SelectionSpec> ParseCliSelection(const std::vector<std::string>& select,
                                        const std::vector<std::string>& exclude);

// The project's selectors.yml (Jinja rendered as dbt renders it: target, var, env_var),
// by name; no file: none. Errors name selectors.yml and the line.
struct NamedSelectors {
  std::map<std::string, SelectionSpec> by_name;
  std::optional<std::string> default_name;  // the one with `default: true`
};
Result<NamedSelectors> LoadSelectors(const Project& project);

struct SelectorOptions {
  // --state: the folder of an earlier run's manifest.json, run_results.json and
  // sources.json that state:, result: and source_status: compare with.
  std::string state_dir;
  IndirectSelection indirect = IndirectSelection::kEager;  // --indirect-selection
};

class Selector {
 public:
  Selector(const Project& project, const Graph& graph, SelectorOptions options);

  // The unique ids `spec` selects.
  Result<std::set<std::string>> Select(const SelectionSpec& spec) const;

 private:
  struct Bundle {
    std::set<std::string> direct, indirect;
  };
  Result<Bundle> Recurse(const SelectionSpec& spec) const;
  Result<Bundle> FromCriterion(const SelectionSpec& spec) const;
  // The tests and unit tests the `selected` nodes take with them.
  Bundle Expand(const std::set<std::string>& selected, IndirectSelection mode) const;
  std::set<std::string> Incorporate(const std::set<std::string>& direct,
                                    const std::set<std::string>& indirect,
                                    IndirectSelection mode) const;
  // The parents a test's indirect selection looks at (a unit test: the model it tests).
  std::vector<std::string> TestParents(const Node& n) const;
  Result<std::set<std::string>> Method(const std::string& method, const std::string& value) const;
  Result<std::set<std::string>> StateMethod(const std::string& value) const;
  Result<std::set<std::string>> ResultMethod(const std::string& value) const;
  Result<std::set<std::string>> SourceStatusMethod(const std::string& value) const;
  // <state>/<file>, parsed; a clear error when --state is missing or the file is.
  Result<nlohmann::json> StateArtifact(const std::string& file, const std::string& method) const;

  const Project& project_;
  const Graph& graph_;
  SelectorOptions options_;
};

// What state:modified compares: a node's checksum (sha256 of its file, as dbt's manifest
// records it) and the macros it calls (statically: names called in its code, transitively
// through the macros' bodies, dispatch candidates included), each with its checksum.
std::string NodeChecksum(const Project& project, const Node& node);
// macro unique id ("macro.<package>.<name>") -> sha256 of its definition.
std::map<std::string, std::string> MacroChecksums(const Project& project);
std::vector<std::string> MacroDependencies(const Project& project, const Node& node,
                                           const std::map<std::string, std::string>& macros);

}  // namespace pdv::transform
