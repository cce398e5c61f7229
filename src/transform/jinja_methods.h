#pragma once

// `obj.name` in a template: a dict's entry, or a method of Python's str, list or dict bound
// to obj (format, zfill, find, rsplit, pop, insert, sort, index, setdefault ...).

#include <string>

#include "transform/jinja_value.h"

namespace pdv::transform::jinja {

// obj.name; an unknown name is Undefined (rendering as nothing, as in Jinja).
Value Attribute(const Value& obj, const std::string& name, int line);

// Only the str/list/dict method `name` bound to obj (Undefined if none): getattr() on a
// dict, which does not see its keys.
Value Method(const Value& obj, const std::string& name);

// Jinja's getattr-or-item for attribute= arguments: an integer (or digits) indexes a
// sequence, dots walk nested attributes ("address.city").
Value Item(const Value& obj, const Value& key, int line);

// Throws Jinja's error for using an undefined value.
[[noreturn]] void ThrowUndefined(const Value& v, int line);

}  // namespace pdv::transform::jinja
