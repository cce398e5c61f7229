#include "pg/errors.h"

namespace pdv::pg {

bool IsConnectionLost(const Status& status) {
  const std::string& c = status.code();
  // Class 08: connection exception; 57P01-57P03: admin/crash shutdown, cannot connect now.
  return c.rfind("08", 0) == 0 || c == "57P01" || c == "57P02" || c == "57P03";
}

bool IsFenced(const Status& status) {
  return status.message().find(kFencedMessage) != std::string::npos;
}

}  // namespace pdv::pg
