// Node types and their dbt names (node_type.h).

#include "transform/node_type.h"

#include <array>
#include <utility>

namespace pdv::transform {
namespace {

constexpr std::array<std::pair<NodeType, std::string_view>, 6> kNames = {{
    {NodeType::kModel, "model"},
    {NodeType::kSeed, "seed"},
    {NodeType::kTest, "test"},
    {NodeType::kUnitTest, "unit_test"},
    {NodeType::kSnapshot, "snapshot"},
    {NodeType::kSource, "source"},
}};

}  // namespace

std::string_view NodeTypeName(NodeType type) {
  for (const auto& [t, name] : kNames) {
    if (t == type) return name;
  }
  return "";
}

std::optional<NodeType> ParseNodeType(std::string_view name) {
  for (const auto& [t, n] : kNames) {
    if (n == name) return t;
  }
  return std::nullopt;
}

}  // namespace pdv::transform
