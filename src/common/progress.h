#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace pdv {

// Progress of a long job on stderr: a redrawn bar on a terminal, and plain lines (every
// 10% or 5 s) when stderr is not a terminal, so logs stay readable. Not thread-safe.
class Progress {
 public:
  Progress(std::FILE* out, std::string label, uint64_t total);
  // `done` items so far; cheap to call often.
  void Update(uint64_t done);
  // Final line with the rate.
  void Finish(uint64_t done);

  // "[#####.....]  50%" etc., for tests.
  static std::string Bar(uint64_t done, uint64_t total, int width);

 private:
  void Draw(uint64_t done, bool final);

  std::FILE* out_;
  std::string label_;
  uint64_t total_;
  bool tty_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  int last_decile_ = -1;
};

}  // namespace pdv
