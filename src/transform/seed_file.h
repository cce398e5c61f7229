#pragma once

// A seed CSV: parsed (RFC 4180 quoting), column types inferred as dbt does (integer,
// numeric, boolean, date, timestamp, text; a `column_types` config wins), and re-emitted
// as COPY CSV data.

#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace pdv::transform {

struct SeedFile {
  std::vector<std::string> columns;
  std::vector<std::string> types;  // SQL type per column
  std::vector<std::vector<std::string>> rows;
  std::vector<std::vector<bool>> nulls;

  // `name` is used in error messages (file:line).
  static Result<SeedFile> Parse(const std::string& text, const std::string& name,
                                const std::map<std::string, std::string>& column_types);
  // The rows as COPY ... (FORMAT csv) input: empty unquoted fields are NULL.
  std::string CopyData() const;
};

}  // namespace pdv::transform
