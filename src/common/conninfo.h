#pragma once

// The one parser of PostgreSQL connection strings (a postgresql:// URL or key=value
// pairs): libpq's own (PQconninfoParse). Configuration checks URLs with it, and the
// stages read a URL's parts with it. In namespace pdv::pg, beside the client
// (src/pg/); here because the configuration (common) cannot depend on src/pg/.

#include <map>
#include <string>
#include <string_view>

#include "common/status.h"

namespace pdv::pg {

// A connection string's settings, keyword by keyword, as libpq reads them. Immutable
// once parsed; safe to share between threads.
class Conninfo {
 public:
  // The error is libpq's reason, on one line ("missing "=" after "x" in connection info
  // string"); nothing is connected to.
  static pdv::Result<Conninfo> Parse(const std::string& text);

  // The value `text` sets for `keyword` ("host", "port", "dbname", "user", "password"...);
  // "" when it sets none.
  std::string Get(std::string_view keyword) const;

 private:
  std::map<std::string, std::string, std::less<>> values_;
};

}  // namespace pdv::pg
