#pragma once

// Jinja's built-in filters (`x | name(args)`) and tests (`x is name args`), plus dbt's
// as_bool/as_number/as_native/as_text, with Jinja2's output.

#include <string>

#include "transform/jinja_value.h"

namespace pdv::transform::jinja {

// An unknown name is a TemplateError at `line`.
Value ApplyFilter(const std::string& name, const Value& v, const Arguments& args, int line);
bool ApplyTest(const std::string& name, const Value& v, const Arguments& args, int line);

bool IsFilter(const std::string& name);
bool IsTest(const std::string& name);

}  // namespace pdv::transform::jinja
