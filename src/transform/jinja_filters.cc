// Jinja's filters and tests (jinja_filters.h), one small function each, found by name.

#include "transform/jinja_filters.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cfenv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <regex>

#include "transform/jinja_format.h"
#include "transform/jinja_methods.h"

namespace pdv::transform::jinja {
namespace {

using FilterFn = Value (*)(const std::string& name, const Value& v, const Arguments& a, int line);
using TestFn = bool (*)(const Value& v, const Arguments& a, int line);

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string Text(const Value& v, int line) {
  if (v.is_undefined()) ThrowUndefined(v, line);
  return v.Str();
}

const Value* Arg(const Arguments& a, size_t i, const char* name) { return a.Get(i, name); }
bool Flag(const Arguments& a, size_t i, const char* name, bool fallback = false) {
  const Value* v = a.Get(i, name);
  return v ? v->Truthy() : fallback;
}
int64_t IntArg(const Arguments& a, size_t i, const char* name, int64_t fallback, int line) {
  const Value* v = a.Get(i, name);
  if (!v || v->is_none()) return fallback;
  if (!v->is_int()) throw TemplateError(line, fmt::format("'{}' must be an integer", name));
  return v->as_int();
}

ValueList ToList(const std::string& name, const Value& v, int line) {
  if (v.is_list()) return v.list();
  if (v.is_dict() && v.dict().sequence) return *v.dict().sequence;
  if (v.is_dict()) {
    ValueList keys;
    for (const auto& [k, x] : v.dict().items) keys.emplace_back(k);
    return keys;
  }
  if (v.is_string()) {
    ValueList chars;
    for (char c : v.as_string()) chars.emplace_back(std::string(1, c));
    return chars;
  }
  if (v.is_undefined()) ThrowUndefined(v, line);
  throw TemplateError(line,
                      fmt::format("filter '{}' needs a sequence, not {}", name, v.TypeName()));
}

// Jinja's map/select and kin yield nothing for none and undefined.
ValueList SeqOrEmpty(const std::string& name, const Value& v, int line) {
  return v.is_none() || v.is_undefined() ? ValueList{} : ToList(name, v, line);
}

Value IgnoreCase(const Value& v) { return v.is_string() ? Value(Lower(v.as_string())) : v; }

// Jinja's make_attrgetter: the item's attribute (dotted, digits index), or `default`.
Value GetAttr(const Value& item, const Value* attribute, const Value* fallback, int line) {
  if (!attribute || attribute->is_none()) return item;
  Value v = Item(item, *attribute, line);
  if (v.is_undefined() && fallback) return *fallback;
  return v;
}

// The sort key of attribute= ("a,b": several), case folded unless case_sensitive.
Value SortKey(const Value& item, const Value* attribute, bool case_sensitive, int line) {
  auto fold = [&](Value v) { return case_sensitive ? v : IgnoreCase(v); };
  if (attribute && attribute->is_string() &&
      attribute->as_string().find(',') != std::string::npos) {
    ValueList parts;
    const std::string& spec = attribute->as_string();
    size_t pos = 0;
    while (true) {
      size_t comma = spec.find(',', pos);
      Value a(spec.substr(pos, comma == std::string::npos ? comma : comma - pos));
      parts.push_back(fold(GetAttr(item, &a, nullptr, line)));
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
    return Value(std::move(parts));
  }
  return fold(GetAttr(item, attribute, nullptr, line));
}

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Python's round(): halves to even.
double RoundHalfEven(double x) {
  int saved = std::fegetround();
  std::fesetround(FE_TONEAREST);
  double r = std::nearbyint(x);
  std::fesetround(saved);
  return r;
}

std::string UrlQuote(const std::string& s, const std::string& safe, bool plus_space) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '_' || c == '.' || c == '-' || c == '~' ||
        safe.find(static_cast<char>(c)) != std::string::npos) {
      out += static_cast<char>(c);
    } else if (plus_space && c == ' ') {
      out += '+';
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

// --- filters -------------------------------------------------------------------------

Value FDefault(const std::string&, const Value& v, const Arguments& a, int) {
  const Value* fallback = Arg(a, 0, "default_value");
  bool use = v.is_undefined() || (Flag(a, 1, "boolean") && !v.Truthy());
  return use ? (fallback ? *fallback : Value("")) : v;
}
Value FLower(const std::string&, const Value& v, const Arguments&, int line) {
  return Value(Lower(Text(v, line)));
}
Value FUpper(const std::string&, const Value& v, const Arguments&, int line) {
  return Value(Upper(Text(v, line)));
}
Value FTrim(const std::string&, const Value& v, const Arguments& a, int line) {
  Arguments strip;
  strip.line = line;
  if (const Value* chars = Arg(a, 0, "chars")) strip.positional.push_back(*chars);
  return Attribute(Value(Text(v, line)), "strip", line).function()(strip);
}
Value FString(const std::string&, const Value& v, const Arguments&, int) { return Value(v.Str()); }
Value FCapitalize(const std::string&, const Value& v, const Arguments&, int line) {
  std::string s = Lower(Text(v, line));
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return Value(s);
}
// Words begin after -, whitespace, (, {, [ or <; each is capitalized.
Value FTitle(const std::string&, const Value& v, const Arguments&, int line) {
  std::string s = Text(v, line), out;
  bool start = true;
  for (char c : s) {
    bool boundary = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' ||
                    std::isspace(static_cast<unsigned char>(c));
    if (boundary) {
      out += c;
      start = true;
    } else {
      out += static_cast<char>(start ? std::toupper(static_cast<unsigned char>(c))
                                     : std::tolower(static_cast<unsigned char>(c)));
      start = false;
    }
  }
  return Value(out);
}
Value FReplace(const std::string&, const Value& v, const Arguments& a, int line) {
  if (a.positional.size() < 2) throw TemplateError(line, "replace needs two arguments");
  Arguments r;
  r.line = line;
  r.positional = {Value(a.positional[0].Str()), Value(a.positional[1].Str())};
  if (const Value* count = Arg(a, 2, "count")) r.positional.push_back(*count);
  return Attribute(Value(Text(v, line)), "replace", line).function()(r);
}
Value FLength(const std::string& name, const Value& v, const Arguments&, int line) {
  if (v.is_string()) return Value(static_cast<int64_t>(v.as_string().size()));
  if (v.is_dict() && !v.dict().sequence) return Value(static_cast<int64_t>(v.dict().items.size()));
  return Value(static_cast<int64_t>(ToList(name, v, line).size()));
}
Value FJoin(const std::string& name, const Value& v, const Arguments& a, int line) {
  const Value* sep = Arg(a, 0, "d");
  const Value* attr = Arg(a, 1, "attribute");
  std::string out;
  ValueList items = ToList(name, v, line);
  for (size_t i = 0; i < items.size(); ++i) {
    if (i && sep) out += sep->Str();
    out += GetAttr(items[i], attr, nullptr, line).Str();
  }
  return Value(std::move(out));
}
Value FFirstLast(const std::string& name, const Value& v, const Arguments&, int line) {
  ValueList items = ToList(name, v, line);
  if (items.empty()) return Value::MakeUndefined(name);
  return name == "first" ? items.front() : items.back();
}
Value FList(const std::string& name, const Value& v, const Arguments&, int line) {
  return Value(ToList(name, v, line));
}
Value FReverse(const std::string& name, const Value& v, const Arguments&, int line) {
  if (v.is_string()) return Value(std::string(v.as_string().rbegin(), v.as_string().rend()));
  ValueList items = ToList(name, v, line);
  std::reverse(items.begin(), items.end());
  return Value(std::move(items));
}
Value FSort(const std::string& name, const Value& v, const Arguments& a, int line) {
  ValueList items = ToList(name, v, line);
  bool reverse = Flag(a, 0, "reverse");
  bool case_sensitive = Flag(a, 1, "case_sensitive");
  const Value* attr = Arg(a, 2, "attribute");
  std::vector<std::pair<Value, Value>> keyed;
  for (const auto& x : items) keyed.emplace_back(SortKey(x, attr, case_sensitive, line), x);
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return reverse ? Compare(y.first, x.first, line) < 0 : Compare(x.first, y.first, line) < 0;
  });
  ValueList out;
  for (auto& [k, x] : keyed) out.push_back(std::move(x));
  return Value(std::move(out));
}
Value FUnique(const std::string& name, const Value& v, const Arguments& a, int line) {
  bool case_sensitive = Flag(a, 0, "case_sensitive");
  const Value* attr = Arg(a, 1, "attribute");
  ValueList out, seen;
  for (const auto& x : ToList(name, v, line)) {
    Value key = SortKey(x, attr, case_sensitive, line);
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
    seen.push_back(key);
    out.push_back(x);
  }
  return Value(std::move(out));
}
Value FMinMax(const std::string& name, const Value& v, const Arguments& a, int line) {
  bool case_sensitive = Flag(a, 0, "case_sensitive");
  const Value* attr = Arg(a, 1, "attribute");
  ValueList items = ToList(name, v, line);
  if (items.empty()) return Value::MakeUndefined(name);
  size_t best = 0;
  Value best_key = SortKey(items[0], attr, case_sensitive, line);
  for (size_t i = 1; i < items.size(); ++i) {
    Value key = SortKey(items[i], attr, case_sensitive, line);
    int c = Compare(key, best_key, line);
    if ((name == "min" && c < 0) || (name == "max" && c > 0)) {
      best = i;
      best_key = key;
    }
  }
  return items[best];
}
Value FMap(const std::string& name, const Value& v, const Arguments& a, int line) {
  const Value* attr = a.Get(99, "attribute");
  const Value* fallback = a.Get(99, "default");
  ValueList out;
  for (const auto& x : SeqOrEmpty(name, v, line)) {
    if (attr) {
      out.push_back(GetAttr(x, attr, fallback, line));
    } else if (!a.positional.empty()) {
      Arguments rest;
      rest.line = line;
      rest.positional.assign(a.positional.begin() + 1, a.positional.end());
      rest.named = a.named;
      out.push_back(ApplyFilter(a.positional[0].Str(), x, rest, line));
    } else {
      throw TemplateError(line, "map needs a filter name or attribute=");
    }
  }
  return Value(std::move(out));
}
Value FSelect(const std::string& name, const Value& v, const Arguments& a, int line) {
  bool by_attr = name.ends_with("attr");
  bool keep_when = name.starts_with("select");
  size_t test_at = by_attr ? 1 : 0;
  if (by_attr && a.positional.empty()) throw TemplateError(line, name + " needs an attribute");
  ValueList out;
  for (const auto& x : SeqOrEmpty(name, v, line)) {
    Value subject = by_attr ? Item(x, a.positional[0], line) : x;
    bool r;
    if (a.positional.size() > test_at) {
      Arguments rest;
      rest.line = line;
      rest.positional.assign(a.positional.begin() + static_cast<long>(test_at) + 1,
                             a.positional.end());
      r = ApplyTest(a.positional[test_at].Str(), subject, rest, line);
    } else {
      r = subject.Truthy();
    }
    if (r == keep_when) out.push_back(x);
  }
  return Value(std::move(out));
}
Value FSum(const std::string& name, const Value& v, const Arguments& a, int line) {
  const Value* attr = Arg(a, 0, "attribute");
  const Value* start = Arg(a, 1, "start");
  Value total = start ? *start : Value(0);
  for (const auto& x : SeqOrEmpty(name, v, line)) {
    Value item = GetAttr(x, attr, nullptr, line);
    if (total.is_list() && item.is_list()) {
      ValueList l = total.list();
      l.insert(l.end(), item.list().begin(), item.list().end());
      total = Value(std::move(l));
      continue;
    }
    if (!item.is_number() || !total.is_number()) {
      throw TemplateError(line, fmt::format("sum: unsupported operand types for +: {} and {}",
                                            total.TypeName(), item.TypeName()));
    }
    total = total.is_int() && item.is_int() ? Value(total.as_int() + item.as_int())
                                            : Value(total.as_number() + item.as_number());
  }
  return total;
}
Value FItems(const std::string& name, const Value& v, const Arguments&, int line) {
  if (v.is_undefined()) return Value(ValueList{});
  if (!v.is_dict()) throw TemplateError(line, name + " needs a dict, not " + v.TypeName());
  ValueList out;
  for (const auto& [k, x] : v.dict().items) out.push_back(Value::Tuple(ValueList{Value(k), x}));
  return Value(std::move(out));
}
Value FDictsort(const std::string& name, const Value& v, const Arguments& a, int line) {
  if (!v.is_dict()) throw TemplateError(line, name + " needs a dict, not " + v.TypeName());
  bool case_sensitive = Flag(a, 0, "case_sensitive");
  const Value* by = Arg(a, 1, "by");
  bool reverse = Flag(a, 2, "reverse");
  size_t pos = 0;
  if (by) {
    if (by->Str() == "value") {
      pos = 1;
    } else if (by->Str() != "key") {
      throw TemplateError(line, "You can only sort by either \"key\" or \"value\"");
    }
  }
  ValueList out = FItems(name, v, a, line).list();
  std::stable_sort(out.begin(), out.end(), [&](const Value& p, const Value& q) {
    Value x = p.list()[pos], y = q.list()[pos];
    if (!case_sensitive) {
      x = IgnoreCase(x);
      y = IgnoreCase(y);
    }
    return reverse ? Compare(y, x, line) < 0 : Compare(x, y, line) < 0;
  });
  return Value(std::move(out));
}
Value FInt(const std::string&, const Value& v, const Arguments& a, int line) {
  const Value* d = Arg(a, 0, "default");
  int64_t base = IntArg(a, 1, "base", 10, line);
  Value fallback = d ? *d : Value(int64_t{0});
  if (v.is_int()) return v;
  if (v.is_double()) return Value(static_cast<int64_t>(v.as_number()));
  if (v.is_bool()) return Value(static_cast<int64_t>(v.as_bool()));
  if (!v.is_string()) return fallback;
  std::string s = v.as_string();
  s.erase(0, s.find_first_not_of(" \t\n\r"));
  s.erase(s.find_last_not_of(" \t\n\r") + 1);
  std::string digits = s;
  digits.erase(std::remove(digits.begin(), digits.end(), '_'), digits.end());
  try {
    size_t used = 0;
    std::string body = digits;
    bool negative = !body.empty() && (body[0] == '-' || body[0] == '+');
    std::string sign = negative ? body.substr(0, 1) : "";
    if (negative) body.erase(0, 1);
    int b = static_cast<int>(base);
    auto prefixed = [&](const char* p) {
      return body.size() > 2 && body[0] == '0' && std::tolower(body[1]) == p[1];
    };
    if ((b == 16 && prefixed("0x")) || (b == 8 && prefixed("0o")) || (b == 2 && prefixed("0b")))
      body.erase(0, 2);
    if (b == 0) {
      b = prefixed("0x") ? 16 : prefixed("0o") ? 8 : prefixed("0b") ? 2 : 10;
      if (b != 10) body.erase(0, 2);
    }
    long long r = std::stoll(sign + body, &used, b);
    if (used == sign.size() + body.size() && !body.empty()) return Value(static_cast<int64_t>(r));
  } catch (const std::exception&) {
  }
  if (base == 10) {
    try {
      size_t used = 0;
      double x = std::stod(s, &used);
      if (used == s.size() && std::isfinite(x)) return Value(static_cast<int64_t>(x));
    } catch (const std::exception&) {
    }
  }
  return fallback;
}
Value FFloat(const std::string&, const Value& v, const Arguments& a, int) {
  const Value* d = Arg(a, 0, "default");
  if (v.is_number()) return Value(v.as_number());
  if (v.is_bool()) return Value(v.as_bool() ? 1.0 : 0.0);
  if (v.is_string()) {
    try {
      size_t used = 0;
      std::string s = v.as_string();
      double x = std::stod(s, &used);
      while (used < s.size() && std::isspace(static_cast<unsigned char>(s[used]))) ++used;
      if (used == s.size()) return Value(x);
    } catch (const std::exception&) {
    }
  }
  return d ? *d : Value(0.0);
}
Value FAbs(const std::string&, const Value& v, const Arguments&, int line) {
  if (v.is_int()) return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
  if (v.is_double()) return Value(std::fabs(v.as_number()));
  if (v.is_bool()) return Value(static_cast<int64_t>(v.as_bool()));
  throw TemplateError(line, fmt::format("bad operand type for abs(): '{}'", v.TypeName()));
}
Value FRound(const std::string&, const Value& v, const Arguments& a, int line) {
  if (!v.is_number()) throw TemplateError(line, "round needs a number, not " + v.TypeName());
  int64_t precision = IntArg(a, 0, "precision", 0, line);
  const Value* m = Arg(a, 1, "method");
  std::string method = m ? m->Str() : "common";
  if (method != "common" && method != "ceil" && method != "floor") {
    throw TemplateError(line, "method must be common, ceil or floor");
  }
  double scale = std::pow(10.0, static_cast<double>(precision));
  if (method == "common") {
    if (v.is_int() && precision >= 0) return v;  // Python's round(int, n) is that int
    if (precision >= 0 && precision < 300 && std::isfinite(v.as_number())) {
      // Python rounds the exact binary value half to even, as printf does: 2.675 (really
      // 2.67499...) to 2.67, 2.5 to 2.
      char buf[512];
      std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(precision), v.as_number());
      return Value(std::strtod(buf, nullptr));
    }
    return Value(RoundHalfEven(v.as_number() * scale) / scale);
  }
  double x = v.as_number() * scale;
  return Value((method == "ceil" ? std::ceil(x) : std::floor(x)) / scale);
}
Value FToJson(const std::string&, const Value& v, const Arguments& a, int line) {
  const Value* indent = Arg(a, 0, "indent");
  if (indent && !indent->is_none()) {
    // With an indent: json's layout, one item per line.
    nlohmann::json j = nlohmann::json::parse(PyJsonDumps(v, true, true), nullptr, false);
    if (j.is_discarded()) throw TemplateError(line, "tojson: value cannot be serialized");
    int width = indent->is_int() ? static_cast<int>(indent->as_int()) : 2;
    std::string out = j.dump(width, ' ', true);
    // nlohmann leaves < > & ' as the escapes we gave them back in raw form: escape again.
    std::string safe;
    for (char c : out) {
      if (c == '<' || c == '>' || c == '&' || c == '\'') {
        safe += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
      } else {
        safe += c;
      }
    }
    return Value(safe);
  }
  return Value(PyJsonDumps(v, true, true));
}
Value FIndent(const std::string&, const Value& v, const Arguments& a, int line) {
  const Value* w = Arg(a, 0, "width");
  std::string pad =
      w && w->is_string()
          ? w->as_string()
          : std::string(
                w && w->is_int() ? static_cast<size_t>(std::max<int64_t>(w->as_int(), 0)) : 4, ' ');
  bool first = Flag(a, 1, "first"), blank = Flag(a, 2, "blank");
  std::string s = Text(v, line) + "\n";
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t nl = s.find('\n', pos);
    lines.push_back(s.substr(pos, nl - pos));
    pos = nl + 1;
  }
  std::string out = lines.empty() ? "" : lines[0];
  for (size_t i = 1; i < lines.size(); ++i) {
    out += "\n";
    if (blank || !lines[i].empty()) out += pad;
    out += lines[i];
  }
  if (first) out = pad + out;
  return Value(out);
}
Value FTruncate(const std::string&, const Value& v, const Arguments& a, int line) {
  std::string s = Text(v, line);
  int64_t length = IntArg(a, 0, "length", 255, line);
  bool killwords = Flag(a, 1, "killwords");
  const Value* end_arg = Arg(a, 2, "end");
  std::string end = end_arg ? end_arg->Str() : "...";
  int64_t leeway = IntArg(a, 3, "leeway", 5, line);
  if (length < static_cast<int64_t>(end.size())) {
    throw TemplateError(line, fmt::format("expected length >= {}, got {}", end.size(), length));
  }
  if (leeway < 0) throw TemplateError(line, fmt::format("expected leeway >= 0, got {}", leeway));
  if (static_cast<int64_t>(s.size()) <= length + leeway) return Value(s);
  std::string head = s.substr(0, static_cast<size_t>(length) - end.size());
  if (killwords) return Value(head + end);
  size_t space = head.rfind(' ');
  if (space != std::string::npos) head.resize(space);
  return Value(head + end);
}
Value FWordcount(const std::string&, const Value& v, const Arguments&, int line) {
  std::string s = Text(v, line);
  int64_t n = 0;
  bool in_word = false;
  for (char c : s) {
    bool w = std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    if (w && !in_word) ++n;
    in_word = w;
  }
  return Value(n);
}
Value FCenter(const std::string&, const Value& v, const Arguments& a, int line) {
  Arguments c;
  c.line = line;
  c.positional.emplace_back(IntArg(a, 0, "width", 80, line));
  return Attribute(Value(Text(v, line)), "center", line).function()(c);
}
Value FEscape(const std::string&, const Value& v, const Arguments&, int) {
  return Value(Escape(v.Str()));
}
Value FSafe(const std::string&, const Value& v, const Arguments&, int) { return v; }
Value FFormat(const std::string&, const Value& v, const Arguments& a, int line) {
  if (!a.positional.empty() && !a.named.empty()) {
    throw TemplateError(line, "can't handle positional and keyword arguments at the same time");
  }
  if (!a.named.empty()) {
    ValueDict d;
    for (const auto& [k, x] : a.named) d.Set(k, x);
    return Value(PrintfFormat(Text(v, line), Value(std::move(d)), line));
  }
  return Value(PrintfFormat(Text(v, line), Value::Tuple(a.positional), line));
}
// getattr(obj, name): fields of objects, methods of str/list/dict; not a plain dict's keys.
Value FAttr(const std::string&, const Value& v, const Arguments& a, int line) {
  const Value* name = Arg(a, 0, "name");
  if (!name) throw TemplateError(line, "attr needs a name");
  bool plain_dict =
      v.is_dict() && !v.dict().text && !v.dict().operators && !v.dict().sequence && !v.dict().call;
  if (plain_dict) return Method(v, name->Str());
  return Attribute(v, name->Str(), line);
}
Value FBatch(const std::string& name, const Value& v, const Arguments& a, int line) {
  int64_t size = IntArg(a, 0, "linecount", 0, line);
  if (size <= 0) throw TemplateError(line, "batch needs a positive count");
  const Value* fill = Arg(a, 1, "fill_with");
  ValueList out, cur;
  for (const auto& x : ToList(name, v, line)) {
    cur.push_back(x);
    if (static_cast<int64_t>(cur.size()) == size) {
      out.emplace_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) {
    if (fill && !fill->is_none()) {
      while (static_cast<int64_t>(cur.size()) < size) cur.push_back(*fill);
    }
    out.emplace_back(std::move(cur));
  }
  return Value(std::move(out));
}
Value FSlice(const std::string& name, const Value& v, const Arguments& a, int line) {
  int64_t slices = IntArg(a, 0, "slices", 0, line);
  if (slices <= 0) throw TemplateError(line, "slice needs a positive count");
  const Value* fill = Arg(a, 1, "fill_with");
  ValueList seq = ToList(name, v, line);
  int64_t length = static_cast<int64_t>(seq.size());
  int64_t per = length / slices, extra = length % slices, offset = 0;
  ValueList out;
  for (int64_t k = 0; k < slices; ++k) {
    int64_t start = offset + k * per;
    if (k < extra) ++offset;
    int64_t end = offset + (k + 1) * per;
    ValueList part(seq.begin() + start, seq.begin() + end);
    if (fill && !fill->is_none() && k >= extra) part.push_back(*fill);
    out.emplace_back(std::move(part));
  }
  return Value(std::move(out));
}
// Sorted by the attribute, grouped; each group is (grouper, list) with those names.
Value FGroupby(const std::string& name, const Value& v, const Arguments& a, int line) {
  const Value* attr = Arg(a, 0, "attribute");
  if (!attr) throw TemplateError(line, "groupby needs an attribute");
  const Value* fallback = Arg(a, 1, "default");
  bool case_sensitive = Flag(a, 2, "case_sensitive");
  auto key = [&](const Value& x) {
    Value k = GetAttr(x, attr, fallback, line);
    return case_sensitive ? k : IgnoreCase(k);
  };
  ValueList items = ToList(name, v, line);
  std::vector<std::pair<Value, Value>> keyed;
  for (const auto& x : items) keyed.emplace_back(key(x), x);
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return Compare(x.first, y.first, line) < 0;
  });
  ValueList out;
  for (size_t i = 0; i < keyed.size();) {
    ValueList group;
    size_t j = i;
    while (j < keyed.size() && keyed[j].first == keyed[i].first) group.push_back(keyed[j++].second);
    Value grouper = GetAttr(group[0], attr, fallback, line);
    ValueDict g;
    g.Set("grouper", grouper);
    g.Set("list", Value(group));
    g.sequence = std::make_shared<ValueList>(ValueList{grouper, Value(group)});
    g.text = fmt::format("({}, {})", grouper.Repr(), Value(group).Repr());
    out.emplace_back(std::move(g));
    i = j;
  }
  return Value(std::move(out));
}
Value FStriptags(const std::string&, const Value& v, const Arguments&, int line) {
  static const std::regex kTags("<!--[\\s\\S]*?-->|<[^>]*>");
  std::string s = std::regex_replace(Text(v, line), kTags, "");
  std::string out;
  bool space = false;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !out.empty();
    } else {
      if (space) out += ' ';
      space = false;
      out += c;
    }
  }
  for (auto [from, to] : {std::pair{"&amp;", "&"},
                          {"&lt;", "<"},
                          {"&gt;", ">"},
                          {"&#34;", "\""},
                          {"&#39;", "'"},
                          {"&quot;", "\""}}) {
    std::string f = from;
    for (size_t p; (p = out.find(f)) != std::string::npos;) out.replace(p, f.size(), to);
  }
  return Value(out);
}
Value FFilesize(const std::string&, const Value& v, const Arguments& a, int line) {
  if (!v.is_number()) throw TemplateError(line, "filesizeformat needs a number");
  bool binary = Flag(a, 0, "binary");
  double bytes = v.as_number(), base = binary ? 1024 : 1000;
  static const char* kDecimal[] = {"kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"};
  static const char* kBinary[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"};
  if (bytes == 1) return Value("1 Byte");
  if (bytes < base) return Value(fmt::format("{} Bytes", static_cast<int64_t>(bytes)));
  for (int i = 0; i < 8; ++i) {
    double unit = std::pow(base, i + 2);
    if (bytes < unit || i == 7) {
      return Value(
          fmt::format("{:.1f} {}", base * bytes / unit, binary ? kBinary[i] : kDecimal[i]));
    }
  }
  return Value();
}
Value FUrlencode(const std::string&, const Value& v, const Arguments&, int) {
  if (v.is_dict() || (v.is_list() && !v.list().empty() && v.list()[0].is_list())) {
    ValueList pairs;
    if (v.is_dict()) {
      for (const auto& [k, x] : v.dict().items) pairs.push_back(Value(ValueList{Value(k), x}));
    } else {
      pairs = v.list();
    }
    std::string out;
    for (const auto& p : pairs) {
      if (!out.empty()) out += '&';
      out += UrlQuote(p.list()[0].Str(), "", true) + "=" + UrlQuote(p.list().at(1).Str(), "", true);
    }
    return Value(out);
  }
  return Value(UrlQuote(v.Str(), "/", false));
}
Value FPprint(const std::string&, const Value& v, const Arguments&, int) { return Value(v.Repr()); }
// dbt's native filters: the text read back as the value it spells.
Value FAsNative(const std::string& name, const Value& v, const Arguments&, int line) {
  if (name == "as_text") return Value(v.Str());
  if (!v.is_string()) return v;
  std::string t = v.as_string();
  t.erase(0, t.find_first_not_of(" \t\n\r"));
  t.erase(t.find_last_not_of(" \t\n\r") + 1);
  if (name != "as_number" && (t == "True" || t == "true")) return Value(true);
  if (name != "as_number" && (t == "False" || t == "false")) return Value(false);
  try {
    size_t used = 0;
    long long i = std::stoll(t, &used);
    if (used == t.size()) return Value(static_cast<int64_t>(i));
    double d = std::stod(t, &used);
    if (used == t.size()) return Value(d);
  } catch (const std::exception&) {
  }
  if (name == "as_native") return v;
  throw TemplateError(line,
                      fmt::format("'{}' is not a {}", t, name == "as_bool" ? "boolean" : "number"));
}

const std::map<std::string, FilterFn>& Filters() {
  static const std::map<std::string, FilterFn> kFilters = {
      {"abs", FAbs},
      {"as_bool", FAsNative},
      {"as_native", FAsNative},
      {"as_number", FAsNative},
      {"as_text", FAsNative},
      {"attr", FAttr},
      {"batch", FBatch},
      {"capitalize", FCapitalize},
      {"center", FCenter},
      {"count", FLength},
      {"d", FDefault},
      {"default", FDefault},
      {"dictsort", FDictsort},
      {"e", FEscape},
      {"escape", FEscape},
      {"filesizeformat", FFilesize},
      {"first", FFirstLast},
      {"float", FFloat},
      {"forceescape", FEscape},
      {"format", FFormat},
      {"groupby", FGroupby},
      {"indent", FIndent},
      {"int", FInt},
      {"items", FItems},
      {"join", FJoin},
      {"last", FFirstLast},
      {"length", FLength},
      {"list", FList},
      {"lower", FLower},
      {"map", FMap},
      {"max", FMinMax},
      {"min", FMinMax},
      {"pprint", FPprint},
      {"reject", FSelect},
      {"rejectattr", FSelect},
      {"replace", FReplace},
      {"reverse", FReverse},
      {"round", FRound},
      {"safe", FSafe},
      {"select", FSelect},
      {"selectattr", FSelect},
      {"slice", FSlice},
      {"sort", FSort},
      {"string", FString},
      {"striptags", FStriptags},
      {"sum", FSum},
      {"title", FTitle},
      {"tojson", FToJson},
      {"trim", FTrim},
      {"truncate", FTruncate},
      {"unique", FUnique},
      {"upper", FUpper},
      {"urlencode", FUrlencode},
      {"wordcount", FWordcount},
  };
  return kFilters;
}

// --- tests ---------------------------------------------------------------------------

const Value& Other(const Arguments& a, int line, const char* test) {
  if (a.positional.empty()) throw TemplateError(line, fmt::format("test '{}' needs a value", test));
  return a.positional[0];
}

bool TSameAs(const Value& v, const Arguments& a, int line) {
  const Value& o = Other(a, line, "sameas");
  if (v.is_list() && o.is_list()) return &v.list() == &o.list();
  if (v.is_dict() && o.is_dict()) return &v.dict() == &o.dict();
  if (v.is_callable() && o.is_callable()) return &v.function() == &o.function();
  if (v.is_bool() != o.is_bool()) return false;
  if (v.is_none() || v.is_bool() || v.is_int() || v.is_string()) {
    return v.TypeName() == o.TypeName() && v == o;
  }
  return false;
}

bool TIn(const Value& v, const Arguments& a, int line) {
  const Value& seq = Other(a, line, "in");
  if (seq.is_string())
    return v.is_string() && seq.as_string().find(v.as_string()) != std::string::npos;
  if (seq.is_dict() && !seq.dict().sequence) return seq.dict().Find(v.Str()) != nullptr;
  if (seq.is_undefined()) ThrowUndefined(seq, line);
  ValueList items = ToList("in", seq, line);
  return std::find(items.begin(), items.end(), v) != items.end();
}

bool TCase(const Value& v, bool upper) {
  if (!v.is_string()) return false;
  bool cased = false;
  for (char c : v.as_string()) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalpha(u)) {
      cased = true;
      if ((std::isupper(u) != 0) != upper) return false;
    }
  }
  return cased;
}

const std::map<std::string, TestFn>& Tests() {
  static const std::map<std::string, TestFn> kTests = {
      {"defined", [](const Value& v, const Arguments&, int) { return !v.is_undefined(); }},
      {"undefined", [](const Value& v, const Arguments&, int) { return v.is_undefined(); }},
      {"none", [](const Value& v, const Arguments&, int) { return v.is_none(); }},
      {"string", [](const Value& v, const Arguments&, int) { return v.is_string(); }},
      {"number",
       [](const Value& v, const Arguments&, int) { return v.is_number() || v.is_bool(); }},
      {"integer", [](const Value& v, const Arguments&, int) { return v.is_int(); }},
      {"float", [](const Value& v, const Arguments&, int) { return v.is_double(); }},
      {"boolean", [](const Value& v, const Arguments&, int) { return v.is_bool(); }},
      {"true", [](const Value& v, const Arguments&, int) { return v.is_bool() && v.as_bool(); }},
      {"false", [](const Value& v, const Arguments&, int) { return v.is_bool() && !v.as_bool(); }},
      {"mapping",
       [](const Value& v, const Arguments&, int) { return v.is_dict() && !v.dict().operators; }},
      {"sequence",
       [](const Value& v, const Arguments&, int) {
         return v.is_list() || v.is_string() || (v.is_dict() && !v.dict().operators);
       }},
      {"iterable",
       [](const Value& v, const Arguments&, int) {
         return v.is_list() || v.is_string() || (v.is_dict() && !v.dict().operators);
       }},
      {"callable", [](const Value& v, const Arguments&,
                      int) { return v.is_callable() || (v.is_dict() && v.dict().call); }},
      {"escaped", [](const Value&, const Arguments&, int) { return false; }},
      {"even",
       [](const Value& v, const Arguments&, int line) {
         if (!v.is_int()) throw TemplateError(line, "'even' test needs an integer");
         return v.as_int() % 2 == 0;
       }},
      {"odd",
       [](const Value& v, const Arguments&, int line) {
         if (!v.is_int()) throw TemplateError(line, "'odd' test needs an integer");
         return v.as_int() % 2 != 0;
       }},
      {"divisibleby",
       [](const Value& v, const Arguments& a, int line) {
         const Value& n = Other(a, line, "divisibleby");
         if (!v.is_number() || !n.is_number())
           throw TemplateError(line, "'divisibleby' needs numbers");
         if (n.as_number() == 0) throw TemplateError(line, "divisibleby: division by zero");
         if (v.is_int() && n.is_int()) return v.as_int() % n.as_int() == 0;
         return std::fmod(v.as_number(), n.as_number()) == 0;
       }},
      {"eq", [](const Value& v, const Arguments& a, int l) { return v == Other(a, l, "eq"); }},
      {"equalto", [](const Value& v, const Arguments& a, int l) { return v == Other(a, l, "eq"); }},
      {"==", [](const Value& v, const Arguments& a, int l) { return v == Other(a, l, "=="); }},
      {"ne", [](const Value& v, const Arguments& a, int l) { return !(v == Other(a, l, "ne")); }},
      {"!=", [](const Value& v, const Arguments& a, int l) { return !(v == Other(a, l, "!=")); }},
      {"lt", [](const Value& v, const Arguments& a,
                int l) { return Compare(v, Other(a, l, "lt"), l) < 0; }},
      {"lessthan", [](const Value& v, const Arguments& a,
                      int l) { return Compare(v, Other(a, l, "lt"), l) < 0; }},
      {"<", [](const Value& v, const Arguments& a,
               int l) { return Compare(v, Other(a, l, "<"), l) < 0; }},
      {"le", [](const Value& v, const Arguments& a,
                int l) { return Compare(v, Other(a, l, "le"), l) <= 0; }},
      {"<=", [](const Value& v, const Arguments& a,
                int l) { return Compare(v, Other(a, l, "<="), l) <= 0; }},
      {"gt", [](const Value& v, const Arguments& a,
                int l) { return Compare(v, Other(a, l, "gt"), l) > 0; }},
      {"greaterthan", [](const Value& v, const Arguments& a,
                         int l) { return Compare(v, Other(a, l, "gt"), l) > 0; }},
      {">", [](const Value& v, const Arguments& a,
               int l) { return Compare(v, Other(a, l, ">"), l) > 0; }},
      {"ge", [](const Value& v, const Arguments& a,
                int l) { return Compare(v, Other(a, l, "ge"), l) >= 0; }},
      {">=", [](const Value& v, const Arguments& a,
                int l) { return Compare(v, Other(a, l, ">="), l) >= 0; }},
      {"in", TIn},
      {"sameas", TSameAs},
      {"upper", [](const Value& v, const Arguments&, int) { return TCase(v, true); }},
      {"lower", [](const Value& v, const Arguments&, int) { return TCase(v, false); }},
      {"filter", [](const Value& v, const Arguments&,
                    int) { return v.is_string() && IsFilter(v.as_string()); }},
      {"test", [](const Value& v, const Arguments&,
                  int) { return v.is_string() && IsTest(v.as_string()); }},
  };
  return kTests;
}

}  // namespace

bool IsFilter(const std::string& name) { return Filters().count(name) > 0; }
bool IsTest(const std::string& name) { return Tests().count(name) > 0; }

Value ApplyFilter(const std::string& name, const Value& v, const Arguments& a, int line) {
  auto it = Filters().find(name);
  if (it == Filters().end())
    throw TemplateError(line, fmt::format("unsupported filter '{}'", name));
  return it->second(name, v, a, line);
}

bool ApplyTest(const std::string& name, const Value& v, const Arguments& a, int line) {
  auto it = Tests().find(name);
  if (it == Tests().end()) throw TemplateError(line, fmt::format("unsupported test 'is {}'", name));
  return it->second(v, a, line);
}

}  // namespace pdv::transform::jinja
