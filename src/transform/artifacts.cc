// target/manifest.json and target/run_results.json (artifacts.h).

#include "transform/artifacts.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "transform/selector.h"

namespace pdv::transform {

namespace fs = std::filesystem;

Status WriteArtifact(const Project& project, const std::string& file, const nlohmann::json& doc) {
  std::error_code ec;
  fs::create_directories(project.target_path, ec);
  std::ofstream out(fs::path(project.target_path) / file);
  out << project.secrets.Scrub(doc.dump(2));
  if (!out) return Status::Error(fmt::format("{}/{}: cannot write", project.target_path, file));
  return Status::Ok();
}

std::string ArtifactTime() {
  auto t = std::chrono::system_clock::now();
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}Z", std::chrono::floor<std::chrono::microseconds>(t));
}

Status WriteManifest(const Project& project_, const Graph& graph_,
                     const std::map<std::string, std::string>& compiled_,
                     const std::string& generated_at, const std::string& adapter_type) {
  nlohmann::json m;
  m["metadata"] = {{"dbt_schema_version", "https://schemas.getdbt.com/dbt/manifest/v12.json"},
                   {"dbt_version", "1.8.0"},
                   {"generated_at", generated_at},
                   {"invocation_id", project_.invocation_id},
                   {"adapter_type", adapter_type},
                   {"project_name", project_.name},
                   {"env", nlohmann::json::object()}};
  m["nodes"] = nlohmann::json::object();
  m["sources"] = nlohmann::json::object();
  m["macros"] = nlohmann::json::object();
  // The macros' checksums, what state:modified.macros compares with a later project.
  for (const auto& [id, sum] : MacroChecksums(project_)) {
    size_t dot = id.find('.', 6);
    m["macros"][id] = {{"unique_id", id},
                       {"package_name", id.substr(6, dot - 6)},
                       {"name", id.substr(dot + 1)},
                       {"resource_type", "macro"},
                       {"checksum", {{"name", "sha256"}, {"checksum", sum}}}};
  }
  m["parent_map"] = nlohmann::json::object();
  m["child_map"] = nlohmann::json::object();
  for (const auto& [id, n] : project_.nodes) {
    nlohmann::json j;
    j["unique_id"] = id;
    j["name"] = n.name;
    j["resource_type"] = NodeTypeName(n.resource_type);
    j["package_name"] = n.package_name;
    j["path"] = n.path;
    j["original_file_path"] = n.original_file_path;
    j["fqn"] = n.fqn;
    j["database"] = n.database;
    j["schema"] = n.schema;
    j["description"] = n.description;
    j["columns"] = n.columns;
    j["tags"] = n.tags();
    j["checksum"] = {{"name", "sha256"}, {"checksum", NodeChecksum(project_, n)}};
    nlohmann::json config = n.config;
    if (!config.contains("tags")) config["tags"] = nlohmann::json::array();
    j["config"] = config;
    std::vector<std::string> node_deps, macro_deps;
    for (const auto& d : n.depends_on) node_deps.push_back(d);
    if (!n.test_macro.empty())
      macro_deps.push_back("macro." + n.test_macro_package + "." + n.test_macro);
    j["depends_on"] = {{"nodes", node_deps}, {"macros", macro_deps}};
    m["parent_map"][id] = node_deps;
    m["child_map"][id] =
        std::vector<std::string>(graph_.children(id).begin(), graph_.children(id).end());
    if (n.resource_type == NodeType::kSource) {
      j["source_name"] = n.source_name;
      j["identifier"] = n.identifier;
      j["relation_name"] = n.RelationName();
      m["sources"][id] = j;
      continue;
    }
    j["alias"] = n.alias;
    j["raw_code"] = n.raw_code;
    j["language"] = "sql";
    nlohmann::json refs = nlohmann::json::array();
    for (const auto& r : n.refs)
      refs.push_back({{"name", r.back()}, {"package", nullptr}, {"version", nullptr}});
    j["refs"] = refs;
    j["sources"] = n.sources;
    if (n.resource_type != NodeType::kTest) j["relation_name"] = n.RelationName();
    auto c = compiled_.find(id);
    j["compiled"] = c != compiled_.end();
    if (c != compiled_.end()) j["compiled_code"] = c->second;
    if (!n.test_macro.empty()) {
      j["test_metadata"] = {{"name", n.test_macro.substr(5)},
                            {"kwargs", ValueToJson(jinja::Value(n.test_kwargs))},
                            {"namespace", nullptr}};
      j["column_name"] =
          n.column_name.empty() ? nlohmann::json(nullptr) : nlohmann::json(n.column_name);
      j["attached_node"] = n.attached_node;
    }
    m["nodes"][id] = j;
  }
  return WriteArtifact(project_, "manifest.json", m);
}

Status WriteRunResults(const Project& project_, const TransformOptions& options_,
                       const std::vector<NodeResult>& results, double elapsed,
                       const std::string& command) {
  nlohmann::json j;
  j["metadata"] = {{"dbt_schema_version", "https://schemas.getdbt.com/dbt/run-results/v6.json"},
                   {"dbt_version", "1.8.0"},
                   {"generated_at", ArtifactTime()},
                   {"invocation_id", project_.invocation_id},
                   {"env", nlohmann::json::object()}};
  j["results"] = nlohmann::json::array();
  for (const auto& r : results) {
    nlohmann::json e;
    e["unique_id"] = r.unique_id;
    e["status"] = StatusText(r.status);
    e["execution_time"] = r.seconds;
    e["thread_id"] = fmt::format("Thread-{}", r.thread);
    e["timing"] = nlohmann::json::array();
    e["message"] =
        r.message.empty() ? nlohmann::json(r.adapter_message) : nlohmann::json(r.message);
    e["failures"] = r.failures >= 0 ? nlohmann::json(r.failures) : nlohmann::json(nullptr);
    e["adapter_response"] =
        r.adapter_message.empty()
            ? nlohmann::json::object()
            : nlohmann::json{{"_message", r.adapter_message},
                             {"code", r.adapter_message.substr(0, r.adapter_message.find(' '))},
                             {"rows_affected", r.rows_affected}};
    e["compiled"] = !r.compiled.empty();
    e["compiled_code"] = r.compiled.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.compiled);
    const Node& n = project_.nodes.at(r.unique_id);
    e["relation_name"] = n.resource_type == NodeType::kTest ? nlohmann::json(nullptr)
                                                            : nlohmann::json(n.RelationName());
    j["results"].push_back(e);
  }
  j["elapsed_time"] = elapsed;
  j["args"] = {{"which", command},
               {"select", options_.select},
               {"exclude", options_.exclude},
               {"full_refresh", options_.full_refresh}};
  return WriteArtifact(project_, "run_results.json", j);
}

}  // namespace pdv::transform
