#pragma once

#include <string>
#include <string_view>

#include "generate/customer.h"

namespace pdv::generate {

// The clientes_clube columns in the order CopyEncoder writes them.
extern const char kCopyColumns[];

// Builds PostgreSQL binary COPY data for clientes_clube rows: the server parses binary
// fields much faster than text. Call Header once, Append per row, Trailer once.
// Pure; not thread-safe per object.
class CopyEncoder {
 public:
  static std::string Header();
  static std::string Trailer();
  // Appends one row to `out`.
  static void Append(const Customer& c, std::string* out);
};

}  // namespace pdv::generate
