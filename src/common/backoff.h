#pragma once

#include <algorithm>
#include <chrono>

namespace pdv {

// Exponential backoff between reconnection attempts: 100 ms, doubling, at most 5 s.
class Backoff {
 public:
  std::chrono::milliseconds delay() const { return delay_; }
  void Grow() { delay_ = std::min(delay_ * 2, kMax); }
  void Reset() { delay_ = kFirst; }

 private:
  static constexpr std::chrono::milliseconds kFirst{100};
  static constexpr std::chrono::milliseconds kMax{5000};
  std::chrono::milliseconds delay_ = kFirst;
};

}  // namespace pdv
