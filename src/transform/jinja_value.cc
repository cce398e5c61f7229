#include "transform/jinja_value.h"

#include <fmt/format.h>

#include <cmath>

namespace pdv::transform::jinja {

const Value* ValueDict::Find(const std::string& key) const {
  for (const auto& [k, v] : items) {
    if (k == key) return &v;
  }
  return nullptr;
}

void ValueDict::Set(const std::string& key, Value value) {
  for (auto& [k, v] : items) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  items.emplace_back(key, std::move(value));
}

const Value* Arguments::Get(size_t index, const std::string& name) const {
  if (index < positional.size()) return &positional[index];
  for (const auto& [k, v] : named) {
    if (k == name) return &v;
  }
  return nullptr;
}

std::string Value::UndefinedMessage() const {
  const Undefined& u = std::get<Undefined>(data_);
  if (!u.owner.empty()) return fmt::format("'{} object' has no attribute '{}'", u.owner, u.name);
  return fmt::format("'{}' is undefined", u.name);
}

bool Value::Truthy() const {
  if (is_none() || is_undefined()) return false;
  if (is_bool()) return as_bool();
  if (is_int()) return as_int() != 0;
  if (is_double()) return as_number() != 0;
  if (is_string()) return !as_string().empty();
  if (is_list()) return !list().empty();
  if (is_dict()) return dict().sequence ? !dict().sequence->empty() : !dict().items.empty();
  return true;
}

namespace {

std::string DoubleText(double d) {
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e16) {
    return fmt::format("{:.1f}", d);
  }
  return fmt::format("{}", d);
}

}  // namespace

std::string Value::Str() const {
  if (is_undefined()) return "";
  if (is_none()) return "None";
  if (is_bool()) return as_bool() ? "True" : "False";
  if (is_int()) return std::to_string(as_int());
  if (is_double()) return DoubleText(as_number());
  if (is_string()) return as_string();
  if (is_dict() && dict().text) return *dict().text;
  if (is_callable()) return "<function>";
  return Repr();
}

std::string Value::Repr() const {
  if (is_string()) {
    std::string out = "'";
    for (char c : as_string()) {
      if (c == '\'' || c == '\\') out += '\\';
      out += c;
    }
    return out + "'";
  }
  if (is_list()) {
    std::string out = tuple_ ? "(" : "[";
    for (size_t i = 0; i < list().size(); ++i) out += (i ? ", " : "") + list()[i].Repr();
    if (tuple_ && list().size() == 1) out += ",";
    return out + (tuple_ ? ")" : "]");
  }
  if (is_dict()) {
    if (dict().text) return *dict().text;
    std::string out = "{";
    bool first = true;
    for (const auto& [k, v] : dict().items) {
      out += (first ? "'" : ", '") + k + "': " + v.Repr();
      first = false;
    }
    return out + "}";
  }
  return Str();
}

std::string Value::TypeName() const {
  if (is_undefined()) return "undefined";
  if (is_none()) return "none";
  if (is_bool()) return "bool";
  if (is_int()) return "int";
  if (is_double()) return "float";
  if (is_string()) return "str";
  if (is_list()) return "list";
  if (is_dict()) return "dict";
  return "function";
}

int Compare(const Value& a, const Value& b, int line) {
  for (const Value* obj : {&a, &b}) {
    if (obj->is_dict() && obj->dict().operators) {
      bool left = obj == &a;
      auto r = (*obj->dict().operators)("cmp", left ? b : a, left);
      if (r && r->is_int()) return static_cast<int>(r->as_int());
    }
  }
  if (a.is_number() && b.is_number()) {
    if (a.is_int() && b.is_int()) return a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int();
    double x = a.as_number(), y = b.as_number();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if ((a.is_bool() || a.is_number()) && (b.is_bool() || b.is_number())) {
    auto num = [](const Value& v) { return v.is_bool() ? double(v.as_bool()) : v.as_number(); };
    double x = num(a), y = num(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) {
    int c = a.as_string().compare(b.as_string());
    return c < 0 ? -1 : c > 0;
  }
  if (a.is_list() && b.is_list()) {
    const ValueList &x = a.list(), &y = b.list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (x[i] == y[i]) continue;
      return Compare(x[i], y[i], line);
    }
    return x.size() < y.size() ? -1 : x.size() > y.size();
  }
  if (a.is_undefined() || b.is_undefined()) {
    throw TemplateError(line, (a.is_undefined() ? a : b).UndefinedMessage());
  }
  throw TemplateError(line, fmt::format("'<' not supported between instances of '{}' and '{}'",
                                        a.TypeName(), b.TypeName()));
}

bool operator==(const Value& a, const Value& b) {
  for (const Value* obj : {&a, &b}) {
    if (obj->is_dict() && obj->dict().operators) {
      bool left = obj == &a;
      auto r = (*obj->dict().operators)("cmp", left ? b : a, left);
      return r && r->is_int() && r->as_int() == 0;
    }
  }
  if ((a.is_bool() || a.is_number()) && (b.is_bool() || b.is_number()) &&
      (a.is_number() || b.is_number())) {
    auto num = [](const Value& v) { return v.is_bool() ? double(v.as_bool()) : v.as_number(); };
    return num(a) == num(b);
  }
  if (a.is_number() && b.is_number()) {
    if (a.is_int() && b.is_int()) return a.as_int() == b.as_int();
    return a.as_number() == b.as_number();
  }
  if (a.is_bool() && b.is_bool()) return a.as_bool() == b.as_bool();
  if (a.is_none() && b.is_none()) return true;
  if (a.is_string() && b.is_string()) return a.as_string() == b.as_string();
  if (a.is_list() && b.is_list()) return a.list() == b.list();
  if (a.is_dict() && b.is_dict()) {
    // Relations compare by what they render as.
    if (a.dict().text && b.dict().text) return *a.dict().text == *b.dict().text;
    if (a.dict().items.size() != b.dict().items.size()) return false;
    for (const auto& [k, v] : a.dict().items) {
      const Value* other = b.dict().Find(k);
      if (!other || !(*other == v)) return false;
    }
    return true;
  }
  return false;
}

nlohmann::json ToJson(const Value& v) {
  if (v.is_none() || v.is_undefined()) return nullptr;
  if (v.is_bool()) return v.as_bool();
  if (v.is_int()) return v.as_int();
  if (v.is_double()) return v.as_number();
  if (v.is_string()) return v.as_string();
  if (v.is_list()) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& e : v.list()) a.push_back(ToJson(e));
    return a;
  }
  if (v.is_dict()) {
    if (v.dict().text) return *v.dict().text;
    nlohmann::json o = nlohmann::json::object();
    for (const auto& [k, e] : v.dict().items) o[k] = ToJson(e);
    return o;
  }
  return v.Str();
}

}  // namespace pdv::transform::jinja
