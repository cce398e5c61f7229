#pragma once

#include <cmath>
#include <cstdint>

namespace pdv::generate {

// SplitMix64: small, fast and good enough for synthetic data; seeded per customer so
// any customer can be regenerated on its own, in any thread, from (seed, serial).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  static Rng For(uint64_t seed, uint64_t stream) {
    Rng mix(seed ^ (stream * 0x9E3779B97F4A7C15ull));
    return Rng(mix.Next() ^ stream);
  }
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n).
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : Next() % n; }
  // Uniform in [lo, hi].
  int64_t Between(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(Below(static_cast<uint64_t>(hi - lo) + 1));
  }
  // Uniform in [0, 1).
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  bool Chance(double p) { return Unit() < p; }
  // Standard normal (Box-Muller).
  double Normal() {
    double u1 = Unit(), u2 = Unit();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  uint64_t state_;
};

}  // namespace pdv::generate
