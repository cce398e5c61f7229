#include "common/fd_limit.h"

#include <sys/resource.h>

#include <algorithm>

namespace pdv {

FdLimit CurrentFdLimit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return {};
  return {.soft = r.rlim_cur, .hard = r.rlim_max};
}

FdLimit RaiseFdLimit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    rlimit raised = r;
    raised.rlim_cur = r.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &raised);
  }
  return CurrentFdLimit();
}

size_t ConnectionsWithin(const FdLimit& limit, size_t wanted, size_t reserve) {
  if (limit.soft == RLIM_INFINITY) return std::max<size_t>(wanted, 1);
  uint64_t room = limit.soft > reserve ? limit.soft - reserve : 1;
  return static_cast<size_t>(std::max<uint64_t>(1, std::min<uint64_t>(wanted, room)));
}

}  // namespace pdv
