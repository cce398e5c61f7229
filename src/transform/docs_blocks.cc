// Loader: `{% docs name %}...{% enddocs %}` blocks in the projects' .md files, and the
// `{{ doc('name') }}` references in descriptions that dbt resolves to them at parse.

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <regex>
#include <set>
#include <utility>

#include "transform/project_loader.h"

namespace pdv::transform::project_internal {
namespace {

struct DocsBlock {
  std::string text;
  std::string file;
};

// dbt's docs-paths: given, else every resource folder of the project.
std::vector<std::string> DocsPaths(const YAML::Node& yml) {
  if (yml["docs-paths"]) return PathList(yml, "docs-paths", "");
  std::vector<std::string> out;
  static constexpr std::pair<const char*, const char*> kPaths[] = {
      {"model-paths", "models"},      {"seed-paths", "seeds"},   {"test-paths", "tests"},
      {"analysis-paths", "analyses"}, {"macro-paths", "macros"}, {"snapshot-paths", "snapshots"}};
  for (auto [key, fallback] : kPaths) {
    for (auto& p : PathList(yml, key, fallback)) out.push_back(std::move(p));
  }
  return out;
}

}  // namespace

void Loader::LoadDocs() {
  // package -> name -> block
  std::map<std::string, std::map<std::string, DocsBlock>> blocks;
  static const std::regex kBlock(
      R"(\{%-?\s*docs\s+([A-Za-z_][A-Za-z0-9_]*)\s*-?%\}([\s\S]*?)\{%-?\s*enddocs\s*-?%\})");
  for (const auto& u : units_) {
    std::set<fs::path> seen;
    for (const auto& dir : DocsPaths(u.yml)) {
      for (const auto& f : FilesUnder(u.dir / dir, ".md")) {
        if (!seen.insert(f).second) continue;
        std::string text = ReadFile(f), file = Rel(f, dir_);
        for (std::sregex_iterator it(text.begin(), text.end(), kBlock), end; it != end; ++it) {
          std::string name = (*it)[1], body = (*it)[2];
          int line =
              1 + static_cast<int>(std::count(text.begin(), text.begin() + it->position(), '\n'));
          auto [at, added] =
              blocks[u.name].emplace(name, DocsBlock{body, fmt::format("{}:{}", file, line)});
          if (!added) {
            throw LoadError{fmt::format("{}:{}: docs block '{}' is defined twice (also at {})",
                                        file, line, name, at->second.file)};
          }
        }
      }
    }
  }
  // dbt trims a block's text; doc('name') looks in the node's package, then the root
  // project, then any package; doc('package', 'name') in that package only.
  for (auto& [package, by_name] : blocks) {
    for (auto& [name, block] : by_name) {
      block.text.erase(0, block.text.find_first_not_of(" \t\r\n"));
      block.text.erase(block.text.find_last_not_of(" \t\r\n") + 1);
    }
  }
  auto find = [&](const std::string& from, const std::string& package,
                  const std::string& name) -> const DocsBlock* {
    auto in = [&](const std::string& pkg) -> const DocsBlock* {
      auto p = blocks.find(pkg);
      if (p == blocks.end()) return nullptr;
      auto b = p->second.find(name);
      return b == p->second.end() ? nullptr : &b->second;
    };
    if (!package.empty()) return in(package);
    if (const DocsBlock* b = in(from)) return b;
    if (const DocsBlock* b = in(p_.name)) return b;
    for (const auto& [pkg, unused] : blocks) {
      if (const DocsBlock* b = in(pkg)) return b;
    }
    return nullptr;
  };
  static const std::regex kDoc(
      R"(\{\{-?\s*doc\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]+)['"]\s*)?\)\s*-?\}\})");
  auto resolve = [&](const Node& n, std::string& description) {
    if (description.find("doc(") == std::string::npos) return;
    std::string out;
    auto last = description.cbegin();
    for (std::sregex_iterator it(description.begin(), description.end(), kDoc), end; it != end;
         ++it) {
      const auto& m = *it;
      std::string package = m[2].matched ? m[1].str() : "";
      std::string name = m[2].matched ? m[2].str() : m[1].str();
      const DocsBlock* b = find(n.package_name, package, name);
      if (!b) {
        throw LoadError{fmt::format(
            "{}: the description of {} '{}' refers to doc('{}'), which no docs block "
            "defines",
            n.properties_at.empty() ? n.original_file_path : n.properties_at,
            NodeTypeName(n.resource_type), n.name, m[2].matched ? package + "', '" + name : name)};
      }
      out.append(last, m[0].first);
      out += b->text;
      last = m[0].second;
    }
    out.append(last, description.cend());
    description = out;
  };
  for (auto& [id, n] : p_.nodes) {
    resolve(n, n.description);
    for (auto& [cname, col] : n.columns.items()) {
      if (!col.is_object() || !col.contains("description") || !col["description"].is_string())
        continue;
      std::string d = col["description"].get<std::string>();
      resolve(n, d);
      col["description"] = d;
    }
  }
}

}  // namespace pdv::transform::project_internal
