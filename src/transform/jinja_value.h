#pragma once

// The values a template computes with: Python's None, bool, int, float, str, list and
// dict, plus callables (macros, dbt's context functions) and Undefined (an unknown name:
// renders as nothing, fails when used further, as in Jinja).

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace pdv::transform::jinja {

// A template error at a line; the renderer adds the file name.
class TemplateError : public std::runtime_error {
 public:
  TemplateError(int line, const std::string& message) : std::runtime_error(message), line_(line) {}
  int line() const { return line_; }

 private:
  int line_;
};

class Value;
using ValueList = std::vector<Value>;
class MacroScope;
struct Arguments;
using Function = std::function<Value(const Arguments&)>;
// An object's operators (datetime arithmetic): `op` is "+", "-", "*", "/", "//", "%", or
// "cmp" (answer -1, 0 or 1); `self_left` says whether the object is the left operand.
// nullopt: the object does not support the operation with that operand.
using Operators =
    std::function<std::optional<Value>(const std::string& op, const Value& other, bool self_left)>;

// An insertion-ordered dict. `text`, when set, is what the dict renders as: dbt's
// relations (`this`, `ref()`) are dicts of their parts that render as "schema"."name".
struct ValueDict {
  std::vector<std::pair<std::string, Value>> items;
  std::optional<std::string> text;
  // Set: the dict can also be called, as dbt's `config` (config(...), config.get(...)).
  std::shared_ptr<Function> call;
  // Set: the dict is also a sequence of these values (loops, integer indexes, filters), as
  // agate's rows and columns are: row[0], row.name and `for cell in row` all work.
  std::shared_ptr<ValueList> sequence;
  // Set: the dict is an object with operators (dates, datetimes, timedeltas).
  std::shared_ptr<Operators> operators;

  const Value* Find(const std::string& key) const;
  void Set(const std::string& key, Value value);
};

struct Arguments {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> named;
  int line = 0;
  // The render making the call, for callables that look macros up (adapter.dispatch).
  MacroScope* scope = nullptr;

  // The argument at `index` or named `name`, or nullptr.
  const Value* Get(size_t index, const std::string& name) const;
};

// A Function throws TemplateError on misuse.

class Value {
 public:
  struct Undefined {
    std::string name;
    std::string owner;  // set: the missing attribute `name` of an object of this type
  };
  using Data = std::variant<std::monostate, Undefined, bool, int64_t, double, std::string,
                            std::shared_ptr<ValueList>, std::shared_ptr<ValueDict>,
                            std::shared_ptr<Function>>;

  Value() = default;  // None
  Value(bool b) : data_(b) {}
  Value(int v) : data_(int64_t{v}) {}
  Value(int64_t v) : data_(v) {}
  Value(double v) : data_(v) {}
  Value(std::string s) : data_(std::move(s)) {}
  Value(const char* s) : data_(std::string(s)) {}
  Value(ValueList list) : data_(std::make_shared<ValueList>(std::move(list))) {}
  Value(ValueDict dict) : data_(std::make_shared<ValueDict>(std::move(dict))) {}
  Value(Function fn) : data_(std::make_shared<Function>(std::move(fn))) {}
  static Value MakeUndefined(std::string name, std::string owner = "") {
    Value v;
    v.data_ = Undefined{std::move(name), std::move(owner)};
    return v;
  }

  // Python's tuple: a list that prints as (a, b) (tuple literals, items(), zip()).
  static Value Tuple(ValueList list) {
    Value v(std::move(list));
    v.tuple_ = true;
    return v;
  }
  bool is_tuple() const { return tuple_ && is_list(); }

  bool is_none() const { return std::holds_alternative<std::monostate>(data_); }
  bool is_undefined() const { return std::holds_alternative<Undefined>(data_); }
  bool is_bool() const { return std::holds_alternative<bool>(data_); }
  bool is_int() const { return std::holds_alternative<int64_t>(data_); }
  bool is_double() const { return std::holds_alternative<double>(data_); }
  bool is_number() const { return is_int() || is_double(); }
  bool is_string() const { return std::holds_alternative<std::string>(data_); }
  bool is_list() const { return std::holds_alternative<std::shared_ptr<ValueList>>(data_); }
  bool is_dict() const { return std::holds_alternative<std::shared_ptr<ValueDict>>(data_); }
  bool is_callable() const { return std::holds_alternative<std::shared_ptr<Function>>(data_); }

  bool as_bool() const { return std::get<bool>(data_); }
  int64_t as_int() const { return std::get<int64_t>(data_); }
  double as_number() const {
    return is_int() ? static_cast<double>(as_int()) : std::get<double>(data_);
  }
  const std::string& as_string() const { return std::get<std::string>(data_); }
  ValueList& list() const { return *std::get<std::shared_ptr<ValueList>>(data_); }
  ValueDict& dict() const { return *std::get<std::shared_ptr<ValueDict>>(data_); }
  const Function& function() const { return *std::get<std::shared_ptr<Function>>(data_); }
  const std::string& undefined_name() const { return std::get<Undefined>(data_).name; }
  // Jinja's message for using an undefined value: "'x' is undefined", or "'str object'
  // has no attribute 'x'".
  std::string UndefinedMessage() const;

  // Python truthiness.
  bool Truthy() const;
  // What `{{ value }}` prints: str() in Python, "" for Undefined.
  std::string Str() const;
  // Python's repr(): strings quoted (used inside lists and dicts).
  std::string Repr() const;
  // Type name for error messages.
  std::string TypeName() const;

  friend bool operator==(const Value& a, const Value& b);

 private:
  bool tuple_ = false;
  Data data_;
};

// Python's comparison: -1, 0 or 1; a TemplateError at `line` for operands Python cannot
// order (str with int, naive with aware datetime ...).
int Compare(const Value& a, const Value& b, int line);

// As JSON: none and undefined are null, functions their text, a relation its text.
nlohmann::json ToJson(const Value& v);

}  // namespace pdv::transform::jinja
