#pragma once

// What a node is (dbt's resource_type), as an enum. The names ("model", "unit_test") are
// used only at the edges: parsing a selector, templates' `model.resource_type`, the
// artifacts' JSON and what the console prints.

#include <optional>
#include <string_view>

namespace pdv::transform {

enum class NodeType { kModel, kSeed, kTest, kUnitTest, kSnapshot, kSource };

// dbt's name of `type`: "model", "seed", "test", "unit_test", "snapshot", "source".
std::string_view NodeTypeName(NodeType type);
// The type dbt names `name`; nullopt for any other text.
std::optional<NodeType> ParseNodeType(std::string_view name);

// A data test or a unit test: checks, not relations it builds.
inline bool IsCheck(NodeType type) {
  return type == NodeType::kTest || type == NodeType::kUnitTest;
}

}  // namespace pdv::transform
