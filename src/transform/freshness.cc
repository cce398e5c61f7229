// Source freshness (freshness.h).

#include "transform/freshness.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "transform/artifacts.h"
#include "transform/reporter.h"

namespace pdv::transform {
namespace {}  // namespace

Result<double> ThresholdSeconds(const nlohmann::json& t) {
  if (!t.is_object() || !t.contains("count") || t["count"].is_null()) return 0.0;
  if (!t["count"].is_number()) return Status::Error("freshness count must be a number");
  std::string period = t.value("period", "");
  double unit = period == "minute" ? 60 : period == "hour" ? 3600 : period == "day" ? 86400 : 0;
  if (unit == 0) {
    return Status::Error(
        fmt::format("freshness period '{}' is not one of minute, hour, day", period));
  }
  return t["count"].get<double>() * unit;
}

std::string FreshnessStatus(double age, const nlohmann::json& freshness) {
  auto error = ThresholdSeconds(freshness.value("error_after", nlohmann::json()));
  auto warn = ThresholdSeconds(freshness.value("warn_after", nlohmann::json()));
  if (error.ok() && *error > 0 && age > *error) return "error";
  if (warn.ok() && *warn > 0 && age > *warn) return "warn";
  return "pass";
}

RunSummary CheckFreshness(const Project& project, Adapter& adapter,
                          const std::set<std::string>& sources, std::FILE* out) {
  auto started = std::chrono::system_clock::now();
  std::vector<const Node*> checked;
  for (const auto& id : sources) {
    const Node& n = project.nodes.at(id);
    const auto& f = n.config.value("freshness", nlohmann::json());
    bool has_threshold = f.is_object() && (f.contains("warn_after") || f.contains("error_after"));
    if (n.resource_type == NodeType::kSource && has_threshold &&
        n.config.value("loaded_at_field", "") != "")
      checked.push_back(&n);
  }
  const ConsoleReporter console(out, /*quiet=*/false, &project.secrets);
  RunSummary summary;
  summary.total = static_cast<int>(checked.size());
  nlohmann::json results = nlohmann::json::array();
  int index = 0;
  for (const Node* n : checked) {
    ++index;
    std::string what = fmt::format("freshness of {}.{}", n->source_name, n->name);
    console.Line(fmt::format("{} of {} START {} [RUN]", index, summary.total, what));
    const nlohmann::json& f = n->config["freshness"];
    std::string filter = f.value("filter", "");
    auto t0 = std::chrono::steady_clock::now();
    auto r = adapter.QueryText(fmt::format(
        "select max({0})::text, now()::text, extract(epoch from now() - max({0})::timestamptz) "
        "from {1}{2}",
        n->config["loaded_at_field"].get<std::string>(), n->RelationName(),
        filter.empty() ? "" : " where " + filter));
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    nlohmann::json result = {
        {"unique_id", n->unique_id},
        {"criteria",
         {{"warn_after", f.value("warn_after", nlohmann::json::object())},
          {"error_after", f.value("error_after", nlohmann::json::object())},
          {"filter", filter.empty() ? nlohmann::json() : nlohmann::json(filter)}}},
        {"execution_time", seconds},
        {"thread_id", "Thread-1"}};
    std::string status;
    if (!r.ok()) {
      status = "runtime error";
      result["error"] = r.message();
      summary.error++;
      console.Line(fmt::format("{} of {} ERROR STALE {} [ERROR in {:.2f}s]", index, summary.total,
                               what, seconds));
      fmt::print(out, "  {}: {}\n", n->original_file_path, project.secrets.Scrub(r.message()));
    } else {
      const auto& row = r->at(0);  // an aggregate: always one row
      bool empty = !row[0];
      double age = empty ? 1e18 : std::stod(row[2].value_or("0"));
      status = empty ? "error" : FreshnessStatus(age, f);
      result["max_loaded_at"] = empty ? nlohmann::json() : nlohmann::json(*row[0]);
      result["snapshotted_at"] = row[1].value_or("");
      result["max_loaded_at_time_ago_in_s"] = empty ? nlohmann::json() : nlohmann::json(age);
      if (status == "pass") summary.pass++;
      if (status == "warn") summary.warn++;
      if (status == "error") summary.error++;
      std::string label = status == "pass" ? "PASS" : status == "warn" ? "WARN" : "ERROR STALE";
      console.Line(fmt::format("{} of {} {} {} [{} in {:.2f}s]", index, summary.total, label, what,
                               label, seconds));
      if (empty) fmt::print(out, "  {}: the table has no rows\n", n->original_file_path);
    }
    result["status"] = status;
    results.push_back(std::move(result));
  }
  auto finished = std::chrono::system_clock::now();
  nlohmann::json doc = {
      {"metadata",
       {{"dbt_schema_version", "https://schemas.getdbt.com/dbt/sources/v3.json"},
        {"dbt_version", "1.8.0"},
        {"generated_at", ArtifactTime()},
        {"invocation_id", project.invocation_id},
        {"env", nlohmann::json::object()}}},
      {"results", results},
      {"elapsed_time", std::chrono::duration<double>(finished - started).count()}};
  if (Status s = WriteArtifact(project, "sources.json", doc); !s.ok()) {
    console.Warning(s.message());
  }
  console.Line(fmt::format("Done. PASS={} WARN={} ERROR={} SKIP=0 TOTAL={}", summary.pass,
                           summary.warn, summary.error, summary.total));
  return summary;
}

}  // namespace pdv::transform
