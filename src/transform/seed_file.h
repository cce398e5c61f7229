#pragma once

// A seed CSV: parsed (RFC 4180 quoting), column types inferred as dbt does (integer,
// numeric, boolean, date, timestamp, text; a `column_types` config wins), and re-emitted
// as COPY CSV data.

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace pdv::transform {

// A column's inferred kind; the warehouse's adapter names its SQL type (dbt's convert_*_type).
enum class SeedColumnType { kText, kInteger, kBigInteger, kNumber, kBoolean, kDate, kTimestamp };

struct SeedFile {
  std::vector<std::string> columns;
  std::vector<SeedColumnType> kinds;  // inferred from the values, per column
  std::vector<std::string> types;     // the column_types config's SQL type, or ""
  std::vector<std::vector<std::string>> rows;
  std::vector<std::vector<bool>> nulls;

  // `name` is used in error messages (file:line); `delimiter` separates fields (the
  // seed's `delimiter` config).
  static Result<SeedFile> Parse(const std::string& text, const std::string& name,
                                const std::map<std::string, std::string>& column_types,
                                char delimiter = ',');
  // Each column's SQL type: the configured one, else `type_name` of its kind.
  std::vector<std::string> SqlTypes(
      const std::function<std::string(SeedColumnType)>& type_name) const;
  // The rows as COPY ... (FORMAT csv) input: empty unquoted fields are NULL.
  std::string CopyData() const;
};

}  // namespace pdv::transform
