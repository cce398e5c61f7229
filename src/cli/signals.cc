#include "cli/signals.h"

#include <signal.h>
#include <unistd.h>

namespace pdv::cli {
namespace {

sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);  // used only to wake the waiter on destruction
  return set;
}

}  // namespace

StopOnSignal::StopOnSignal() {
  sigset_t set = StopSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  waiter_ = std::jthread([this, set](std::stop_token own) {
    while (!own.stop_requested()) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0 || own.stop_requested()) return;
      if (sig == SIGUSR1) continue;
      if (source_.stop_requested()) ::_exit(130);
      source_.request_stop();
    }
  });
}

StopOnSignal::~StopOnSignal() {
  waiter_.request_stop();
  pthread_kill(waiter_.native_handle(), SIGUSR1);
}

}  // namespace pdv::cli
