// redis::Pipeline: a round trip for many commands (see pipeline.h).

#include "redis/pipeline.h"

namespace pdv::redis {

Pipeline::~Pipeline() {
  (void)DrainEach([](Result<Reply>&) { return Status::Ok(); });
}

void Pipeline::Add(const std::vector<std::string_view>& args) {
  client_.Append(args);
  ++pending_;
}

Status Pipeline::DrainEach(const std::function<Status(Result<Reply>&)>& each) {
  Status first;
  while (pending_ > 0) {
    --pending_;
    auto r = client_.GetReply();
    Status s = each(r);
    if (first.ok()) first = s;
    if (!r.ok() && IsConnectionError(r.status())) {
      pending_ = 0;  // the connection is gone: no other reply comes
      break;
    }
  }
  return first;
}

Status Pipeline::Drain(const std::function<Status(Reply&)>& each) {
  bool failed = false;
  return DrainEach([&](Result<Reply>& r) -> Status {
    if (failed) return Status::Ok();
    Status s = !r.ok() ? r.status() : each ? each(*r) : Status::Ok();
    failed = !s.ok();
    return s;
  });
}

}  // namespace pdv::redis
