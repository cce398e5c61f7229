#pragma once

// Reading PostgreSQL's COPY text format (the rows `COPY ... TO STDOUT` streams): one line
// split into its fields, each decoded (backslash escapes, \N for NULL). Streaming a query
// through COPY keeps the server producing rows while the client works on the last ones,
// which a cursor's FETCH round trips do not. Pure; no I/O.

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace pdv::pg {

class CopyTextLine {
 public:
  // Splits `line` (its trailing newline optional). Views stay valid until the next
  // Parse or until `line`'s storage goes. An error names the bad escape's column.
  Status Parse(std::string_view line);

  size_t size() const { return fields_.size(); }
  bool is_null(size_t i) const { return i >= fields_.size() || fields_[i].null; }
  // The decoded text of field `i` (empty when NULL or past the end).
  std::string_view get(size_t i) const {
    return i < fields_.size() ? fields_[i].text : std::string_view();
  }

 private:
  struct Field {
    std::string_view text;
    bool null = false;
  };
  std::vector<Field> fields_;
  std::string decoded_;  // escaped fields, decoded; reserved to the line's size up front
};

}  // namespace pdv::pg
