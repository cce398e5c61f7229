// The console output of a run (reporter.h).

#include "transform/reporter.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>

namespace pdv::transform {
namespace {

constexpr int kLineWidth = 80;

std::string Now() {
  auto t = std::chrono::system_clock::now();
  return fmt::format("{:%H:%M:%S}", std::chrono::floor<std::chrono::seconds>(t));
}

std::string Dots(const std::string& left, const std::string& right) {
  int fill = kLineWidth - static_cast<int>(left.size()) - static_cast<int>(right.size()) - 2;
  return left + " " + std::string(static_cast<size_t>(std::max(fill, 3)), '.') + " " + right;
}

std::string Plural(int n, const std::string& word) {
  return fmt::format("{} {}{}", n, word, n == 1 ? "" : "s");
}

std::string Describe(const Node& n) {
  if (n.resource_type == NodeType::kSeed) return "seed file " + n.schema + "." + n.alias;
  if (n.resource_type == NodeType::kTest) return "test " + n.name;
  if (n.resource_type == NodeType::kUnitTest) return "unit test " + n.name;
  if (n.resource_type == NodeType::kSnapshot) return "snapshot " + n.schema + "." + n.alias;
  return fmt::format("sql {} model {}.{}", n.materialized(), n.schema, n.alias);
}

bool IsTest(const Node& n) { return IsCheck(n.resource_type); }

}  // namespace

std::string ConsoleReporter::Kind(const Node& node) {
  return node.resource_type == NodeType::kUnitTest   ? "unit test"
         : node.resource_type == NodeType::kTest     ? "data test"
         : node.resource_type == NodeType::kSeed     ? "seed"
         : node.resource_type == NodeType::kSnapshot ? "snapshot"
                                                     : node.materialized() + " model";
}

std::string ConsoleReporter::Scrub(const std::string& text) const {
  return secrets_ ? secrets_->Scrub(text) : text;
}

void ConsoleReporter::Line(const std::string& text) const {
  if (quiet_) return;
  fmt::print(out_, "{}  {}\n", Now(), Scrub(text));
  std::fflush(out_);
}

void ConsoleReporter::Warning(const std::string& text) const { Error("warning: " + text); }

void ConsoleReporter::Error(const std::string& text) const {
  fmt::print(stderr, "{}\n", Scrub(text));
}

void ConsoleReporter::Header(const Project& project) const {
  Line("Running with pdv transform (dbt-compatible runner)");
  std::map<NodeType, int> count;
  for (const auto& [id, n] : project.nodes) count[n.resource_type]++;
  std::string extra;
  if (count[NodeType::kSnapshot]) extra += ", " + Plural(count[NodeType::kSnapshot], "snapshot");
  if (count[NodeType::kUnitTest]) extra += ", " + Plural(count[NodeType::kUnitTest], "unit test");
  Line(fmt::format("Found {}, {}, {}, {}, {}{}", Plural(count[NodeType::kModel], "model"),
                   Plural(count[NodeType::kSeed], "seed"),
                   Plural(count[NodeType::kTest], "data test"),
                   Plural(count[NodeType::kSource], "source"),
                   Plural(static_cast<int>(project.macro_files.size()), "macro file"), extra));
  Line("");
}

void ConsoleReporter::Concurrency(size_t threads, const std::string& target) const {
  Line(fmt::format("Concurrency: {} threads (target='{}')", threads, target));
  Line("");
}

void ConsoleReporter::Started(const std::string& n_of, const Node& node) const {
  Line(Dots(fmt::format("{} START {}", n_of, Describe(node)), "[RUN]"));
}

void ConsoleReporter::Skipped(const std::string& n_of, const Node& node) const {
  Line(Dots(IsTest(node) ? fmt::format("{} SKIP test {}", n_of, node.name)
                         : fmt::format("{} SKIP relation {}.{}", n_of, node.schema, node.alias),
            "[SKIP]"));
}

void ConsoleReporter::Finished(const std::string& n_of, const Node& node,
                               const NodeResult& r) const {
  std::string timing = fmt::format("in {:.2f}s", r.seconds);
  switch (r.status) {
    case NodeStatus::kSuccess: {
      std::string verb = node.resource_type == NodeType::kSeed       ? "OK loaded"
                         : node.resource_type == NodeType::kSnapshot ? "OK snapshotted"
                                                                     : "OK created";
      Line(Dots(
          fmt::format("{} {} {}", n_of, verb, Describe(node)),
          fmt::format("[{} {}]", r.adapter_message.empty() ? "OK" : r.adapter_message, timing)));
      return;
    }
    case NodeStatus::kPass:
      Line(Dots(fmt::format("{} PASS {}", n_of, node.name), fmt::format("[PASS {}]", timing)));
      return;
    case NodeStatus::kWarn:
      Line(Dots(fmt::format("{} WARN {} {}", n_of, r.failures, node.name),
                fmt::format("[WARN {} {}]", r.failures, timing)));
      return;
    case NodeStatus::kFail:
      Line(Dots(fmt::format("{} FAIL {} {}", n_of, r.failures, node.name),
                fmt::format("[FAIL {} {}]", r.failures, timing)));
      return;
    case NodeStatus::kSkipped:
      Skipped(n_of, node);
      return;
    case NodeStatus::kError:
      Line(Dots(
          fmt::format("{} ERROR {}", n_of, IsTest(node) ? node.name : "creating " + Describe(node)),
          fmt::format("[ERROR {}]", timing)));
      return;
  }
}

void ConsoleReporter::Summary(
    const std::map<std::string, int>& kinds, double elapsed, const RunSummary& summary,
    const std::vector<std::pair<const Node*, NodeResult>>& problems) const {
  std::string ran;
  for (const auto& [k, n] : kinds) ran += (ran.empty() ? "" : ", ") + Plural(n, k);
  Line("");
  Line(fmt::format("Finished running {} in {} hours {} minutes and {:.2f} seconds ({:.2f}s).",
                   ran.empty() ? "nothing" : ran, static_cast<int>(elapsed) / 3600,
                   static_cast<int>(elapsed) % 3600 / 60, std::fmod(elapsed, 60.0), elapsed));
  Line("");
  if (summary.error == 0 && summary.warn == 0) {
    Line("Completed successfully");
  } else {
    Line(fmt::format("Completed with {} and {}:", Plural(summary.error, "error"),
                     Plural(summary.warn, "warning")));
    for (const auto& [node, r] : problems) {
      Line("");
      std::string kind = r.status == NodeStatus::kFail   ? "Failure in test"
                         : r.status == NodeStatus::kWarn ? "Warning in test"
                         : node->resource_type == NodeType::kTest
                             ? "Database Error in test"
                             : "Error in " + std::string(NodeTypeName(node->resource_type));
      Line(fmt::format("{} {} ({})", kind, node->name,
                       node->defined_at.empty() ? node->original_file_path : node->defined_at));
      Line("  " + r.message);
    }
  }
  Line("");
  Line(fmt::format("Done. PASS={} WARN={} ERROR={} SKIP={} TOTAL={}", summary.pass, summary.warn,
                   summary.error, summary.skip, summary.total));
}

}  // namespace pdv::transform
