#pragma once

// What a run prints, in dbt's shape: the header, a line as each node starts and as it
// ends (`3 of 18 START ...`, `OK created ...`, `FAIL 2 ...`), and the closing summary with
// each problem's message. Timestamped lines on `out`; nothing when quiet (watch). Warnings
// and errors outside a node's result on stderr.

#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "transform/node_result.h"
#include "transform/project.h"
#include "transform/transform.h"

namespace pdv::transform {

class ConsoleReporter {
 public:
  // `secrets` (borrowed, outlives this; null: none) are scrubbed from every line.
  ConsoleReporter(std::FILE* out, bool quiet, const SecretMask* secrets)
      : out_(out), quiet_(quiet), secrets_(secrets) {}

  void Line(const std::string& text) const;
  // Outside any node's result, on stderr and even when quiet: "warning: <text>", and a
  // whole error line as given.
  void Warning(const std::string& text) const;
  void Error(const std::string& text) const;
  void Header(const Project& project) const;
  void Concurrency(size_t threads, const std::string& target) const;
  void Started(const std::string& n_of, const Node& node) const;
  void Skipped(const std::string& n_of, const Node& node) const;
  void Finished(const std::string& n_of, const Node& node, const NodeResult& r) const;
  // `kinds`: how many of each kind ran ("table model" -> 3).
  void Summary(const std::map<std::string, int>& kinds, double elapsed, const RunSummary& summary,
               const std::vector<std::pair<const Node*, NodeResult>>& problems) const;

  // "table model", "data test", "unit test", "seed", "snapshot".
  static std::string Kind(const Node& node);

 private:
  std::string Scrub(const std::string& text) const;

  std::FILE* out_;
  bool quiet_;
  const SecretMask* secrets_;
};

}  // namespace pdv::transform
