#pragma once

// One node's outcome in a run: what the scheduler, the console and run_results.json read.

#include <cstdint>
#include <string>

namespace pdv::transform {

// Built or loaded (success), a test's pass / warn / fail, an error, or skipped because
// something upstream failed.
enum class NodeStatus { kSuccess, kError, kSkipped, kPass, kFail, kWarn };

// As run_results.json spells it.
inline const char* StatusText(NodeStatus status) {
  switch (status) {
    case NodeStatus::kSuccess:
      return "success";
    case NodeStatus::kError:
      return "error";
    case NodeStatus::kSkipped:
      return "skipped";
    case NodeStatus::kPass:
      return "pass";
    case NodeStatus::kFail:
      return "fail";
    case NodeStatus::kWarn:
      return "warn";
  }
  return "error";
}

struct NodeResult {
  std::string unique_id;
  NodeStatus status = NodeStatus::kError;
  std::string message;
  double seconds = 0;
  int64_t failures = -1;
  std::string compiled;
  std::string adapter_message;
  int64_t rows_affected = -1;
  int thread = 1;  // the worker that ran it, from 1
};

}  // namespace pdv::transform
