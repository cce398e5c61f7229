#pragma once

// What every benchmark program needs: failing loudly, and medians.

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/status.h"

namespace pdv::bench {

[[noreturn]] inline void Die(const std::string& what) {
  fmt::print(stderr, "bench: {}\n", what);
  std::exit(1);
}

template <typename T>
T Must(pdv::Result<T> r, const char* what) {
  if (!r.ok()) Die(fmt::format("{}: {}", what, r.message()));
  return std::move(*r);
}

inline void Must(const pdv::Status& s, const char* what) {
  if (!s.ok()) Die(fmt::format("{}: {}", what, s.message()));
}

// A whole file's text ("" if it cannot be read).
inline std::string ReadFile(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The value at fraction `p` (0..1) of the sorted values; 0 when there are none.
inline double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

}  // namespace pdv::bench
