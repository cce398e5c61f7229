#pragma once

// Python's text formatting as templates reach it: str.format() and format-spec
// mini-language, printf-style `%` (the `format` filter and `"%s" % x`), and json.dumps
// (the `tojson` filter and dbt's tojson()).

#include <string>

#include "transform/jinja_value.h"

namespace pdv::transform::jinja {

// format(value, spec): "{:>8.2f}" and kin. A date/datetime takes a strftime spec.
std::string FormatSpec(const Value& value, const std::string& spec, int line);

// `fmt`.format(*args, **kwargs).
std::string StrFormat(const std::string& fmt, const Arguments& args);

// `fmt` % args: args a tuple, a dict (for %(name)s) or one value.
std::string PrintfFormat(const std::string& fmt, const Value& args, int line);

// json.dumps(value, sort_keys=...): Python's separators and ASCII escapes; html_safe also
// escapes < > & ' as Jinja's tojson filter does.
std::string PyJsonDumps(const Value& value, bool sort_keys, bool html_safe);

}  // namespace pdv::transform::jinja
