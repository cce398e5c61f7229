// The selection methods that compare with an earlier run's artifacts (--state): state:,
// result:, source_status:; and the checksums state:modified compares (selector.h).

#include <fmt/format.h>
#include <openssl/evp.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "transform/selector.h"

namespace pdv::transform {
namespace {

namespace fs = std::filesystem;

std::string Sha256(const std::string& text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) hex += fmt::format("{:02x}", md[i]);
  return hex;
}

std::string ReadWhole(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Identifiers followed by `(` in `text`: (package or "", name) pairs, and the names given
// to adapter.dispatch('name', ...).
struct Calls {
  std::vector<std::pair<std::string, std::string>> calls;
  std::vector<std::string> dispatched;
};

Calls ScanCalls(const std::string& text) {
  Calls out;
  auto ident_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  for (size_t i = 0; i < text.size();) {
    if (!(std::isalpha(static_cast<unsigned char>(text[i])) || text[i] == '_') ||
        (i > 0 && ident_char(text[i - 1]))) {
      ++i;
      continue;
    }
    size_t start = i;
    while (i < text.size() && ident_char(text[i])) ++i;
    std::string name = text.substr(start, i - start);
    size_t j = i;
    while (j < text.size() && std::isspace(static_cast<unsigned char>(text[j]))) ++j;
    if (j >= text.size() || text[j] != '(') continue;
    std::string package;
    if (start > 0 && text[start - 1] == '.') {
      size_t q = start - 1;
      size_t e = q;
      while (q > 0 && ident_char(text[q - 1])) --q;
      package = text.substr(q, e - q);
    }
    out.calls.emplace_back(package, name);
  }
  static const std::regex kDispatch(R"(dispatch\s*\(\s*(?:macro_name\s*=\s*)?['"](\w+)['"])");
  for (std::sregex_iterator it(text.begin(), text.end(), kDispatch), end; it != end; ++it) {
    out.dispatched.push_back((*it)[1]);
  }
  return out;
}

// Each macro of the project's macro files: unique id -> its definition's text.
std::map<std::string, std::string> MacroTexts(const Project& project) {
  std::map<std::string, std::string> out;
  static const std::regex kStart(R"(\{%-?\s*(macro|test)\s+([A-Za-z_]\w*))");
  static const std::regex kEnd(R"(\{%-?\s*end(macro|test)\s*-?%\})");
  fs::path root(project.dir);
  for (const auto& rel : project.macro_files) {
    std::string package = project.name;
    fs::path abs = (root / rel).lexically_normal();
    for (const auto& p : project.packages) {
      std::string dir = fs::path(p.dir).lexically_normal().string();
      if (abs.string().starts_with(dir + "/")) package = p.name;
    }
    std::string text = ReadWhole(abs);
    for (std::sregex_iterator it(text.begin(), text.end(), kStart), end; it != end; ++it) {
      size_t from = static_cast<size_t>(it->position());
      std::smatch e;
      std::string rest = text.substr(from);
      size_t to = text.size();
      if (std::regex_search(rest, e, kEnd)) to = from + e.position() + e.length();
      std::string name = (*it)[1] == "test" ? "test_" + (*it)[2].str() : (*it)[2].str();
      out["macro." + package + "." + name] = text.substr(from, to - from);
    }
  }
  return out;
}

// The ids of the macros `name` (called from `package`, qualified by `qualifier` when
// not "") may resolve to.
void Resolve(const Project& project, const std::map<std::string, std::string>& macros,
             const std::string& package, const std::string& qualifier, const std::string& name,
             std::vector<std::string>* out) {
  auto add = [&](const std::string& pkg, const std::string& n) {
    std::string id = "macro." + pkg + "." + n;
    if (macros.count(id)) out->push_back(id);
  };
  if (!qualifier.empty()) {
    add(qualifier, name);
    return;
  }
  add(package, name);
  add(project.name, name);
  for (const auto& p : project.packages) add(p.name, name);
}

}  // namespace

std::string NodeChecksum(const Project& project, const Node& n) {
  switch (n.resource_type) {
    case NodeType::kSeed:
      return Sha256(ReadWhole(fs::path(project.dir) / n.original_file_path));
    case NodeType::kUnitTest:
      return Sha256(n.unit_test.dump());
    case NodeType::kSource:
      return Sha256(n.schema + "." + n.identifier + n.config.dump());
    case NodeType::kTest:
      if (!n.test_macro.empty()) {
        return Sha256(n.test_macro_package + "." + n.test_macro +
                      ValueToJson(jinja::Value(n.test_kwargs)).dump());
      }
      [[fallthrough]];
    default:
      return Sha256(n.raw_code);
  }
}

std::map<std::string, std::string> MacroChecksums(const Project& project) {
  std::map<std::string, std::string> out;
  for (const auto& [id, text] : MacroTexts(project)) out[id] = Sha256(text);
  return out;
}

std::vector<std::string> MacroDependencies(const Project& project, const Node& node,
                                           const std::map<std::string, std::string>& texts) {
  std::vector<std::string> found;
  std::set<std::string> seen;
  std::vector<std::pair<std::string, std::string>> todo;  // (package, text)
  todo.emplace_back(node.package_name, node.raw_code);
  if (!node.test_macro.empty()) {
    Resolve(project, texts, node.package_name, node.test_macro_package, node.test_macro, &found);
  }
  auto visit = [&](const std::vector<std::string>& ids) {
    for (const auto& id : ids) {
      if (!seen.insert(id).second) continue;
      std::string pkg = id.substr(6, id.find('.', 6) - 6);
      todo.emplace_back(pkg, texts.at(id));
    }
  };
  visit(found);
  while (!todo.empty()) {
    auto [package, text] = todo.back();
    todo.pop_back();
    Calls c = ScanCalls(text);
    std::vector<std::string> ids;
    for (const auto& [qualifier, name] : c.calls)
      Resolve(project, texts, package, qualifier, name, &ids);
    for (const auto& d : c.dispatched) {
      for (const char* prefix : {"postgres__", "default__"})
        Resolve(project, texts, package, "", prefix + d, &ids);
    }
    visit(ids);
  }
  return {seen.begin(), seen.end()};
}

Result<nlohmann::json> Selector::StateArtifact(const std::string& file,
                                               const std::string& method) const {
  if (options_.state_dir.empty()) {
    return Status::Error(fmt::format(
        "the '{}:' selection method compares with an earlier run: give --state DIR (the "
        "folder of its {})",
        method, file));
  }
  fs::path p = fs::path(options_.state_dir) / file;
  if (!fs::exists(p)) {
    return Status::Error(
        fmt::format("--state {}: no {} there (needed by '{}:')", options_.state_dir, file, method));
  }
  auto j = nlohmann::json::parse(ReadWhole(p), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Error(fmt::format("{}: not a JSON object", p.string()));
  }
  return j;
}

Result<std::set<std::string>> Selector::StateMethod(const std::string& value) const {
  static const std::set<std::string> kKinds = {"new",
                                               "old",
                                               "modified",
                                               "unmodified",
                                               "modified.body",
                                               "modified.configs",
                                               "modified.relation",
                                               "modified.persisted_descriptions",
                                               "modified.macros",
                                               "modified.contract"};
  if (!kKinds.count(value)) {
    return Status::Error(
        fmt::format("state '{}' is not one of new, old, modified, unmodified, modified.body, "
                    "modified.configs, modified.relation, modified.persisted_descriptions, "
                    "modified.macros, modified.contract",
                    value));
  }
  auto manifest = StateArtifact("manifest.json", "state");
  if (!manifest.ok()) return manifest.status();
  auto previous = [&](const std::string& id) -> const nlohmann::json* {
    for (const char* section : {"nodes", "sources", "unit_tests"}) {
      if (manifest->contains(section) && (*manifest)[section].is_object() &&
          (*manifest)[section].contains(id)) {
        return &(*manifest)[section][id];
      }
    }
    return nullptr;
  };
  std::map<std::string, std::string> texts;
  std::map<std::string, std::string> macro_sums;
  bool wants_macros = value == "modified" || value == "unmodified" || value == "modified.macros";
  if (wants_macros) {
    texts = MacroTexts(project_);
    for (const auto& [id, text] : texts) macro_sums[id] = Sha256(text);
  }
  auto strip = [](nlohmann::json c) {
    if (!c.is_object()) return nlohmann::json::object();
    for (const char* k : {"database", "schema", "alias"}) c.erase(k);
    if (c.contains("tags") && c["tags"].is_array() && c["tags"].empty()) c.erase("tags");
    return c;
  };
  auto field = [](const nlohmann::json& j, const char* key) {
    return j.is_object() && j.contains(key) ? j[key] : nlohmann::json();
  };
  std::set<std::string> out;
  for (const auto& [id, n] : project_.nodes) {
    const nlohmann::json* old = previous(id);
    if (value == "new" || value == "old") {
      if ((value == "new") == (old == nullptr)) out.insert(id);
      continue;
    }
    std::set<std::string> changed;  // the subselectors this node is modified by
    if (old) {
      std::string sum = NodeChecksum(project_, n);
      std::string old_sum;
      if (old->contains("checksum") && (*old)["checksum"].is_object())
        old_sum = (*old)["checksum"].value("checksum", "");
      if (old_sum.empty() ? field(*old, "raw_code") != nlohmann::json(n.raw_code) : old_sum != sum)
        changed.insert("body");
      nlohmann::json old_config = field(*old, "config");
      if (strip(old_config) != strip(n.config)) changed.insert("configs");
      for (const char* k : {"database", "schema", "alias"}) {
        if (field(old_config, k) != field(n.config, k)) changed.insert("relation");
      }
      if (field(*old, "fqn") != nlohmann::json(n.fqn)) changed.insert("fqn");
      nlohmann::json docs = field(n.config, "persist_docs");
      if (field(docs, "relation") == true &&
          field(*old, "description") != nlohmann::json(n.description)) {
        changed.insert("persisted_descriptions");
      }
      if (field(docs, "columns") == true) {
        nlohmann::json old_columns = field(*old, "columns");
        for (const auto& [name, c] : n.columns.items()) {
          if (field(field(old_columns, name.c_str()), "description") != field(c, "description"))
            changed.insert("persisted_descriptions");
        }
      }
      if (field(field(n.config, "contract"), "enforced") == true) {
        nlohmann::json old_columns = field(*old, "columns");
        for (const auto& [name, c] : n.columns.items()) {
          nlohmann::json o = field(old_columns, name.c_str());
          if (o.is_null() || field(o, "data_type") != field(c, "data_type"))
            changed.insert("contract");
        }
      }
      if (wants_macros) {
        nlohmann::json old_macros = field(*manifest, "macros");
        for (const auto& m : MacroDependencies(project_, n, texts)) {
          nlohmann::json o = field(field(old_macros, m.c_str()), "checksum");
          if (field(o, "checksum") != nlohmann::json(macro_sums[m])) changed.insert("macros");
        }
      }
    }
    bool modified = !old || !changed.empty();
    if (value == "modified") {
      if (modified) out.insert(id);
    } else if (value == "unmodified") {
      if (!modified) out.insert(id);
    } else if (changed.count(value.substr(9))) {  // modified.<part>
      out.insert(id);
    }
  }
  return out;
}

Result<std::set<std::string>> Selector::ResultMethod(const std::string& value) const {
  auto results = StateArtifact("run_results.json", "result");
  if (!results.ok()) return results.status();
  std::set<std::string> out;
  for (const auto& r : results->value("results", nlohmann::json::array())) {
    if (!r.is_object() || r.value("status", "") != value) continue;
    std::string id = r.value("unique_id", "");
    if (project_.nodes.count(id)) out.insert(id);
  }
  return out;
}

Result<std::set<std::string>> Selector::SourceStatusMethod(const std::string& value) const {
  if (value != "fresher") {
    return Status::Error(
        fmt::format("source_status '{}' is not supported (known: fresher)", value));
  }
  auto previous = StateArtifact("sources.json", "source_status");
  if (!previous.ok()) return previous.status();
  fs::path current_path = fs::path(project_.target_path) / "sources.json";
  if (!fs::exists(current_path)) {
    return Status::Error(
        fmt::format("source_status: no current freshness results at {} (run `pdv transform source "
                    "freshness` first)",
                    current_path.string()));
  }
  auto current = nlohmann::json::parse(ReadWhole(current_path), nullptr, false);
  if (current.is_discarded() || !current.is_object())
    return Status::Error(fmt::format("{}: not a JSON object", current_path.string()));
  // unique id -> max_loaded_at; an error result has none and is never "fresher".
  auto loaded = [](const nlohmann::json& doc, std::set<std::string>* errors) {
    std::map<std::string, std::string> out;
    for (const auto& r : doc.value("results", nlohmann::json::array())) {
      if (!r.is_object()) continue;
      std::string id = r.value("unique_id", "");
      if (r.contains("max_loaded_at") && r["max_loaded_at"].is_string())
        out[id] = r["max_loaded_at"].get<std::string>();
      else
        errors->insert(id);
    }
    return out;
  };
  std::set<std::string> errors;
  auto now = loaded(current, &errors);
  auto before = loaded(*previous, &errors);
  std::set<std::string> out;
  for (const auto& [id, at] : now) {
    if (errors.count(id) || !project_.nodes.count(id)) continue;
    auto it = before.find(id);
    if (it == before.end() || at > it->second) out.insert(id);
  }
  return out;
}

}  // namespace pdv::transform
