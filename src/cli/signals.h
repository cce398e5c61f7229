#pragma once

#include <stop_token>
#include <thread>

namespace pdv::cli {

// Turns SIGINT/SIGTERM into a stop request: the first asks the running command to stop
// cleanly (between transactions); a second one exits at once (status 130). Construct it
// in main before any other thread starts, so every thread inherits the blocked mask.
class StopOnSignal {
 public:
  StopOnSignal();
  ~StopOnSignal();
  std::stop_token token() const { return source_.get_token(); }

 private:
  std::stop_source source_;
  std::jthread waiter_;
};

}  // namespace pdv::cli
