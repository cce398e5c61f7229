// Selection trees and their evaluation with indirect test selection (selector.h).

#include "transform/selector.h"

#include <fmt/format.h>

#include <algorithm>
#include <regex>

namespace pdv::transform {

Result<IndirectSelection> ParseIndirectSelection(const std::string& text) {
  if (text == "eager") return IndirectSelection::kEager;
  if (text == "cautious") return IndirectSelection::kCautious;
  if (text == "buildable") return IndirectSelection::kBuildable;
  if (text == "empty") return IndirectSelection::kEmpty;
  return Status::Error(
      fmt::format("indirect selection '{}' is not one of eager, cautious, buildable, empty", text));
}

Result<SelectionSpec> ParseCriterion(const std::string& text) {
  // dbt's RAW_SELECTOR_PATTERN: [@][n+][method:]value[+n]
  static const std::regex kPattern(R"(^(@)?((\d*)\+)?(([\w.]+):)?(.*?)(\+(\d*))?$)");
  std::smatch m;
  if (!std::regex_match(text, m, kPattern) || m[6].length() == 0) {
    return Status::Error(fmt::format("invalid selector '{}'", text));
  }
  SelectionSpec s;
  s.raw = text;
  s.childrens_parents = m[1].matched;
  if (m[2].matched) s.parents_depth = m[3].length() ? std::stoi(m[3]) : -1;
  if (m[7].matched) s.children_depth = m[8].length() ? std::stoi(m[8]) : -1;
  if (s.childrens_parents && (s.parents_depth || s.children_depth)) {
    return Status::Error(fmt::format("selector '{}': '@' cannot be combined with '+'", text));
  }
  s.method = m[5].matched ? m[5].str() : "";
  s.value = m[6];
  if (s.method.empty()) {
    // dbt's default method: a path when it looks like one, a file name by its extension,
    // else an fqn.
    if (s.value.find('/') != std::string::npos || s.value.find('\\') != std::string::npos) {
      s.method = "path";
    } else if (s.value.ends_with(".sql") || s.value.ends_with(".py") || s.value.ends_with(".csv")) {
      s.method = "file";
    } else {
      s.method = "fqn";
    }
  }
  return s;
}

namespace {

std::vector<std::string> SplitOn(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

Result<SelectionSpec> ParseUnion(const std::vector<std::string>& args,
                                 std::optional<IndirectSelection> indirect) {
  SelectionSpec u;
  u.kind = SelectionSpec::Kind::kUnion;
  for (const auto& arg : args) {
    for (const auto& word : SplitOn(arg, ' ')) {
      SelectionSpec inter;
      inter.kind = SelectionSpec::Kind::kIntersection;
      inter.raw = word;
      for (const auto& part : SplitOn(word, ',')) {
        auto c = ParseCriterion(part);
        if (!c.ok()) return c;
        if (indirect) c->indirect = indirect;
        inter.parts.push_back(std::move(*c));
      }
      u.parts.push_back(std::move(inter));
      u.raw += (u.raw.empty() ? "" : " ") + word;
    }
  }
  return u;
}

}  // namespace

Result<SelectionSpec> ParseCliSelection(const std::vector<std::string>& select,
                                        const std::vector<std::string>& exclude) {
  SelectionSpec included;
  if (select.empty()) {
    included.kind = SelectionSpec::Kind::kCriterion;
    included.method = "fqn";
    included.value = "*";
    included.raw = "*";
  } else {
    auto u = ParseUnion(select, std::nullopt);
    if (!u.ok()) return u;
    included = std::move(*u);
  }
  if (exclude.empty()) return included;
  auto excluded = ParseUnion(exclude, IndirectSelection::kEager);
  if (!excluded.ok()) return excluded;
  SelectionSpec diff;
  diff.kind = SelectionSpec::Kind::kDifference;
  diff.parts.push_back(std::move(included));
  diff.parts.push_back(std::move(*excluded));
  return diff;
}

Selector::Selector(const Project& project, const Graph& graph, SelectorOptions options)
    : project_(project), graph_(graph), options_(std::move(options)) {}

Result<std::set<std::string>> Selector::Select(const SelectionSpec& spec) const {
  auto b = Recurse(spec);
  if (!b.ok()) return b.status();
  return b->direct;
}

std::vector<std::string> Selector::TestParents(const Node& n) const {
  if (n.resource_type == NodeType::kUnitTest) return {n.attached_node};
  const auto& p = graph_.parents(n.unique_id);
  return {p.begin(), p.end()};
}

Selector::Bundle Selector::Expand(const std::set<std::string>& selected,
                                  IndirectSelection mode) const {
  Bundle b{selected, {}};
  if (mode == IndirectSelection::kEmpty) return b;
  std::set<std::string> upstream;  // buildable: the selection's ancestors count as selected
  if (mode == IndirectSelection::kBuildable) {
    for (const auto& id : selected) upstream.merge(graph_.Ancestors(id));
  }
  for (const auto& [id, n] : project_.nodes) {
    if (!IsCheck(n.resource_type) || selected.count(id)) continue;
    std::vector<std::string> parents = TestParents(n);
    bool any = false, all = !parents.empty();
    for (const auto& p : parents) {
      bool in = selected.count(p) > 0;
      any |= in;
      all &= in || (mode == IndirectSelection::kBuildable && upstream.count(p));
    }
    if (!any) continue;
    if (mode == IndirectSelection::kEager || all) {
      b.direct.insert(id);
    } else {
      b.indirect.insert(id);
    }
  }
  return b;
}

std::set<std::string> Selector::Incorporate(const std::set<std::string>& direct,
                                            const std::set<std::string>& indirect,
                                            IndirectSelection mode) const {
  std::set<std::string> out = direct;
  if (mode != IndirectSelection::kCautious && mode != IndirectSelection::kBuildable) return out;
  std::set<std::string> upstream;
  if (mode == IndirectSelection::kBuildable) {
    for (const auto& id : direct) upstream.merge(graph_.Ancestors(id));
  }
  for (const auto& id : indirect) {
    if (out.count(id)) continue;
    auto it = project_.nodes.find(id);
    if (it == project_.nodes.end() || !IsCheck(it->second.resource_type)) continue;
    bool all = true;
    for (const auto& p : TestParents(it->second))
      all &= direct.count(p) > 0 || upstream.count(p) > 0;
    if (all) out.insert(id);
  }
  return out;
}

Result<Selector::Bundle> Selector::FromCriterion(const SelectionSpec& spec) const {
  auto base = Method(spec.method, spec.value);
  if (!base.ok()) return base.status();
  std::set<std::string> collected = *base;
  for (const auto& id : *base) {
    if (spec.parents_depth) collected.merge(graph_.Ancestors(id, spec.parents_depth));
    if (spec.children_depth || spec.childrens_parents) {
      auto d = graph_.Descendants(id, spec.childrens_parents ? -1 : spec.children_depth);
      if (spec.childrens_parents) {
        for (const auto& x : d) collected.merge(graph_.Ancestors(x));
      }
      collected.merge(d);
    }
  }
  return Expand(collected, spec.indirect.value_or(options_.indirect));
}

Result<Selector::Bundle> Selector::Recurse(const SelectionSpec& spec) const {
  if (spec.kind == SelectionSpec::Kind::kCriterion) return FromCriterion(spec);
  std::vector<std::set<std::string>> directs, indirects;
  for (const auto& part : spec.parts) {
    auto b = Recurse(part);
    if (!b.ok()) return b;
    directs.push_back(b->direct);
    std::set<std::string> both = b->direct;
    both.insert(b->indirect.begin(), b->indirect.end());
    indirects.push_back(std::move(both));
  }
  auto combine = [&](const std::vector<std::set<std::string>>& sets) {
    std::set<std::string> out;
    if (sets.empty()) return out;
    if (spec.kind == SelectionSpec::Kind::kUnion) {
      for (const auto& s : sets) out.insert(s.begin(), s.end());
    } else if (spec.kind == SelectionSpec::Kind::kIntersection) {
      out = sets[0];
      for (size_t i = 1; i < sets.size(); ++i) {
        std::set<std::string> both;
        std::set_intersection(out.begin(), out.end(), sets[i].begin(), sets[i].end(),
                              std::inserter(both, both.end()));
        out = std::move(both);
      }
    } else {  // difference
      out = sets[0];
      for (size_t i = 1; i < sets.size(); ++i) {
        for (const auto& id : sets[i]) out.erase(id);
      }
    }
    return out;
  };
  Bundle b;
  b.indirect = combine(indirects);
  b.direct = Incorporate(combine(directs), b.indirect, spec.indirect.value_or(options_.indirect));
  return b;
}

}  // namespace pdv::transform
