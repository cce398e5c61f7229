// Python's str.format, printf-style % and json.dumps over template values (jinja_format.h).

#include "transform/jinja_format.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>

namespace pdv::transform::jinja {
namespace {

struct Spec {
  char fill = ' ';
  char align = 0;  // < > ^ =
  char sign = '-';
  bool alternate = false;
  bool zero = false;
  int width = -1;
  char grouping = 0;
  int precision = -1;
  char type = 0;
};

Spec ParseSpec(const std::string& s, int line) {
  Spec spec;
  size_t i = 0;
  auto is_align = [](char c) { return c == '<' || c == '>' || c == '^' || c == '='; };
  if (s.size() >= 2 && is_align(s[1])) {
    spec.fill = s[0];
    spec.align = s[1];
    i = 2;
  } else if (!s.empty() && is_align(s[0])) {
    spec.align = s[0];
    i = 1;
  }
  if (i < s.size() && (s[i] == '+' || s[i] == '-' || s[i] == ' ')) spec.sign = s[i++];
  if (i < s.size() && s[i] == '#') {
    spec.alternate = true;
    ++i;
  }
  if (i < s.size() && s[i] == '0') {
    spec.zero = true;
    ++i;
  }
  auto number = [&]() {
    int n = 0;
    bool any = false;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      n = n * 10 + (s[i++] - '0');
      any = true;
      if (n > 100000) throw TemplateError(line, "format: width or precision too big");
    }
    return any ? n : -1;
  };
  spec.width = number();
  if (i < s.size() && (s[i] == ',' || s[i] == '_')) spec.grouping = s[i++];
  if (i < s.size() && s[i] == '.') {
    ++i;
    spec.precision = number();
    if (spec.precision < 0) throw TemplateError(line, "format: precision missing after '.'");
  }
  if (i < s.size()) spec.type = s[i++];
  if (i != s.size()) throw TemplateError(line, fmt::format("invalid format specifier '{}'", s));
  return spec;
}

std::string Group(const std::string& digits, char sep, int every) {
  std::string out;
  int n = 0;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    if (n && n % every == 0) out += sep;
    out += *it;
    ++n;
  }
  std::reverse(out.begin(), out.end());
  return out;
}

// Pads `body` (after its `prefix`: sign and 0x) to the spec's width.
std::string Pad(const Spec& spec, const std::string& prefix, const std::string& body,
                char default_align) {
  char align = spec.align ? spec.align : (spec.zero ? '=' : default_align);
  char fill = spec.align ? spec.fill : (spec.zero ? '0' : spec.fill);
  size_t len = prefix.size() + body.size();
  size_t width = spec.width < 0 ? 0 : static_cast<size_t>(spec.width);
  if (len >= width) return prefix + body;
  size_t pad = width - len;
  switch (align) {
    case '<':
      return prefix + body + std::string(pad, fill);
    case '^':
      return std::string(pad / 2, fill) + prefix + body + std::string(pad - pad / 2, fill);
    case '=':
      return prefix + std::string(pad, fill) + body;
    default:
      return std::string(pad, fill) + prefix + body;
  }
}

std::string SignOf(bool negative, char sign) {
  if (negative) return "-";
  if (sign == '+') return "+";
  if (sign == ' ') return " ";
  return "";
}

std::string FormatInt(int64_t v, const Spec& spec, int line) {
  bool negative = v < 0;
  uint64_t mag = negative ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  std::string digits, prefix;
  switch (spec.type) {
    case 0:
    case 'd':
    case 'n':
      digits = std::to_string(mag);
      break;
    case 'x':
      digits = fmt::format("{:x}", mag);
      if (spec.alternate) prefix = "0x";
      break;
    case 'X':
      digits = fmt::format("{:X}", mag);
      if (spec.alternate) prefix = "0X";
      break;
    case 'o':
      digits = fmt::format("{:o}", mag);
      if (spec.alternate) prefix = "0o";
      break;
    case 'b':
      digits = fmt::format("{:b}", mag);
      if (spec.alternate) prefix = "0b";
      break;
    case 'c':
      return Pad(spec, "", std::string(1, static_cast<char>(v)), '<');
    default:
      throw TemplateError(line, fmt::format("unknown format code '{}' for int", spec.type));
  }
  if (spec.grouping)
    digits = Group(digits, spec.grouping, spec.type == 0 || spec.type == 'd' ? 3 : 4);
  return Pad(spec, SignOf(negative, spec.sign) + prefix, digits, '>');
}

std::string FormatFloat(double v, const Spec& spec, int line) {
  bool negative = std::signbit(v) && !std::isnan(v);
  double mag = std::fabs(v);
  char type = spec.type;
  int precision = spec.precision;
  std::string body;
  if (std::isinf(mag) || std::isnan(mag)) {
    body = std::isnan(mag) ? "nan" : "inf";
    if (type == 'F' || type == 'E' || type == 'G') {
      for (char& c : body) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
  } else if (type == 0 && precision < 0) {
    body = Value(mag).Str();
  } else {
    bool percent = type == '%';
    if (percent) mag *= 100;
    char t = type == 0 ? 'g' : percent ? 'f' : type;
    if (t != 'f' && t != 'F' && t != 'e' && t != 'E' && t != 'g' && t != 'G') {
      throw TemplateError(line, fmt::format("unknown format code '{}' for float", type));
    }
    int p = precision < 0 ? 6 : precision;
    std::string pattern = fmt::format("%{}.{}{}", spec.alternate ? "#" : "", p, t);
    char buf[512];
    std::snprintf(buf, sizeof buf, pattern.c_str(), mag);
    body = buf;
    // Python's no-type format keeps a float looking like one: 1.0, not 1.
    if (type == 0 && body.find_first_of(".e") == std::string::npos) body += ".0";
    if (percent) body += '%';
  }
  if (spec.grouping) {
    size_t end = body.find_first_not_of("0123456789");
    if (end == std::string::npos) end = body.size();
    body = Group(body.substr(0, end), spec.grouping, 3) + body.substr(end);
  }
  return Pad(spec, SignOf(negative, spec.sign), body, '>');
}

// The value of a {field}: a position or name, then .attr and [key] parts.
Value FieldValue(const std::string& field, const Arguments& args, size_t& next_auto) {
  size_t end = field.find_first_of(".[");
  std::string head = field.substr(0, end);
  Value v;
  if (head.empty() || std::all_of(head.begin(), head.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c));
      })) {
    size_t index = head.empty() ? next_auto++ : std::stoul(head);
    if (index >= args.positional.size()) {
      throw TemplateError(args.line, fmt::format("format: replacement index {} out of range for "
                                                 "positional args tuple",
                                                 index));
    }
    v = args.positional[index];
  } else {
    const Value* named = nullptr;
    for (const auto& [k, x] : args.named) {
      if (k == head) named = &x;
    }
    if (!named) throw TemplateError(args.line, fmt::format("format: KeyError: '{}'", head));
    v = *named;
  }
  size_t i = end;
  while (i != std::string::npos && i < field.size()) {
    if (field[i] == '.') {
      size_t stop = field.find_first_of(".[", i + 1);
      std::string name = field.substr(i + 1, stop == std::string::npos ? stop : stop - i - 1);
      const Value* x = v.is_dict() ? v.dict().Find(name) : nullptr;
      if (!x) {
        throw TemplateError(args.line,
                            fmt::format("format: '{}' has no attribute '{}'", v.TypeName(), name));
      }
      v = *x;
      i = stop;
    } else {
      size_t close = field.find(']', i);
      if (close == std::string::npos) throw TemplateError(args.line, "format: missing ']'");
      std::string key = field.substr(i + 1, close - i - 1);
      if (v.is_list() && !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
            return std::isdigit(static_cast<unsigned char>(c));
          })) {
        size_t k = std::stoul(key);
        if (k >= v.list().size()) throw TemplateError(args.line, "format: index out of range");
        v = v.list()[k];
      } else {
        const Value* x = v.is_dict() ? v.dict().Find(key) : nullptr;
        if (!x) throw TemplateError(args.line, fmt::format("format: KeyError: '{}'", key));
        v = *x;
      }
      i = close + 1;
    }
  }
  return v;
}

void JsonString(const std::string& s, bool html_safe, std::string& out) {
  out += '"';
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    if (html_safe && (c == '<' || c == '>' || c == '&' || c == '\'')) {
      out += fmt::format("\\u{:04x}", c);
    } else if (c < 0x20) {
      out += fmt::format("\\u{:04x}", c);
    } else if (c < 0x80) {
      out += static_cast<char>(c);
    } else {
      // UTF-8 to a code point, written as \uXXXX (a surrogate pair above U+FFFF).
      uint32_t cp = 0;
      int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
      cp = c & (0x3F >> extra);
      for (int k = 0; k < extra && i + 1 < s.size(); ++k) cp = (cp << 6) | (s[++i] & 0x3F);
      if (cp >= 0x10000) {
        cp -= 0x10000;
        out += fmt::format("\\u{:04x}\\u{:04x}", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
      } else {
        out += fmt::format("\\u{:04x}", cp);
      }
    }
  }
  out += '"';
}

void Json(const Value& v, bool sort_keys, bool html_safe, std::string& out) {
  if (v.is_none() || v.is_undefined()) {
    out += "null";
  } else if (v.is_bool()) {
    out += v.as_bool() ? "true" : "false";
  } else if (v.is_int()) {
    out += std::to_string(v.as_int());
  } else if (v.is_double()) {
    double d = v.as_number();
    out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d < 0 ? "-Infinity" : "Infinity") : v.Str();
  } else if (v.is_list() || (v.is_dict() && v.dict().sequence && v.dict().items.empty())) {
    const ValueList& l = v.is_list() ? v.list() : *v.dict().sequence;
    out += '[';
    for (size_t i = 0; i < l.size(); ++i) {
      if (i) out += ", ";
      Json(l[i], sort_keys, html_safe, out);
    }
    out += ']';
  } else if (v.is_dict() && !v.dict().text) {
    std::vector<const std::pair<std::string, Value>*> items;
    for (const auto& item : v.dict().items) items.push_back(&item);
    if (sort_keys) {
      std::stable_sort(items.begin(), items.end(),
                       [](auto* a, auto* b) { return a->first < b->first; });
    }
    out += '{';
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) out += ", ";
      JsonString(items[i]->first, html_safe, out);
      out += ": ";
      Json(items[i]->second, sort_keys, html_safe, out);
    }
    out += '}';
  } else {
    JsonString(v.Str(), html_safe, out);
  }
}

}  // namespace

std::string FormatSpec(const Value& value, const std::string& spec_text, int line) {
  if (value.is_dict()) {
    // date/datetime.__format__ is strftime.
    const Value* strftime = value.dict().Find("strftime");
    if (strftime && strftime->is_callable() && !spec_text.empty()) {
      Arguments a;
      a.line = line;
      a.positional.emplace_back(spec_text);
      return strftime->function()(a).Str();
    }
  }
  if (spec_text.empty()) return value.Str();
  Spec spec = ParseSpec(spec_text, line);
  if (value.is_bool() && spec.type == 0 && !spec.grouping) {
    return Pad(spec, "", value.Str(), '<');
  }
  if (value.is_int() || value.is_bool()) {
    int64_t v = value.is_bool() ? int64_t(value.as_bool()) : value.as_int();
    if (spec.type && std::string("eEfFgG%").find(spec.type) != std::string::npos) {
      return FormatFloat(static_cast<double>(v), spec, line);
    }
    return FormatInt(v, spec, line);
  }
  if (value.is_double()) return FormatFloat(value.as_number(), spec, line);
  if (spec.type && spec.type != 's') {
    throw TemplateError(line, fmt::format("unknown format code '{}' for object of type '{}'",
                                          spec.type, value.TypeName()));
  }
  std::string s = value.Str();
  if (spec.precision >= 0 && s.size() > static_cast<size_t>(spec.precision)) {
    s.resize(static_cast<size_t>(spec.precision));
  }
  return Pad(spec, "", s, '<');
}

std::string StrFormat(const std::string& f, const Arguments& args) {
  std::string out;
  size_t next_auto = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    char c = f[i];
    if (c == '}') {
      if (i + 1 < f.size() && f[i + 1] == '}') {
        out += '}';
        ++i;
        continue;
      }
      throw TemplateError(args.line, "format: single '}' encountered in format string");
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < f.size() && f[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    size_t close = f.find('}', i);
    if (close == std::string::npos) {
      throw TemplateError(args.line, "format: single '{' encountered in format string");
    }
    std::string field = f.substr(i + 1, close - i - 1);
    i = close;
    std::string spec, conversion;
    if (size_t colon = field.find(':'); colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field.resize(colon);
    }
    if (size_t bang = field.find('!'); bang != std::string::npos) {
      conversion = field.substr(bang + 1);
      field.resize(bang);
    }
    Value v = FieldValue(field, args, next_auto);
    if (conversion == "r" || conversion == "a") {
      v = Value(v.Repr());
    } else if (conversion == "s") {
      v = Value(v.Str());
    } else if (!conversion.empty()) {
      throw TemplateError(args.line, fmt::format("format: unknown conversion '!{}'", conversion));
    }
    out += FormatSpec(v, spec, args.line);
  }
  return out;
}

std::string PrintfFormat(const std::string& f, const Value& args, int line) {
  ValueList positional;
  const ValueDict* mapping = nullptr;
  if (args.is_tuple()) {
    positional = args.list();
  } else {
    if (args.is_dict() && !args.dict().text && !args.dict().operators) mapping = &args.dict();
    positional.push_back(args);
  }
  size_t next = 0;
  bool used_mapping = false;
  std::string out;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] != '%') {
      out += f[i];
      continue;
    }
    if (++i >= f.size()) throw TemplateError(line, "format: incomplete format");
    if (f[i] == '%') {
      out += '%';
      continue;
    }
    const Value* arg = nullptr;
    if (f[i] == '(') {
      size_t close = f.find(')', i);
      if (close == std::string::npos || !mapping) {
        throw TemplateError(line, "format: %(name) needs a dict argument");
      }
      std::string key = f.substr(i + 1, close - i - 1);
      arg = mapping->Find(key);
      if (!arg) throw TemplateError(line, fmt::format("format: KeyError: '{}'", key));
      used_mapping = true;
      i = close + 1;
    }
    Spec spec;
    for (; i < f.size(); ++i) {
      char c = f[i];
      if (c == '-') {
        spec.align = '<';
      } else if (c == '+' || c == ' ') {
        spec.sign = spec.sign == '+' ? '+' : c;
      } else if (c == '#') {
        spec.alternate = true;
      } else if (c == '0') {
        spec.zero = true;
      } else {
        break;
      }
    }
    auto number = [&]() {
      int n = -1;
      while (i < f.size() && std::isdigit(static_cast<unsigned char>(f[i]))) {
        n = (n < 0 ? 0 : n * 10) + (f[i++] - '0');
        if (n > 100000) throw TemplateError(line, "format: width or precision too big");
      }
      return n;
    };
    spec.width = number();
    if (i < f.size() && f[i] == '.') {
      ++i;
      spec.precision = std::max(number(), 0);
    }
    if (i >= f.size()) throw TemplateError(line, "format: incomplete format");
    char type = f[i];
    if (!arg) {
      if (next >= positional.size()) {
        throw TemplateError(line, "format: not enough arguments for format string");
      }
      arg = &positional[next++];
    }
    if (spec.align == '<') spec.zero = false;
    switch (type) {
      case 's':
      case 'r':
      case 'a': {
        std::string s = type == 's' ? arg->Str() : arg->Repr();
        if (spec.precision >= 0 && s.size() > static_cast<size_t>(spec.precision))
          s.resize(static_cast<size_t>(spec.precision));
        Spec text = spec;
        text.zero = false;
        out += Pad(text, "", s, '>');
        break;
      }
      case 'd':
      case 'i':
      case 'u': {
        if (!arg->is_number() && !arg->is_bool()) {
          throw TemplateError(line, fmt::format("format: %{} format: a real number is required, "
                                                "not {}",
                                                type, arg->TypeName()));
        }
        int64_t v = arg->is_bool()  ? int64_t(arg->as_bool())
                    : arg->is_int() ? arg->as_int()
                                    : static_cast<int64_t>(std::trunc(arg->as_number()));
        Spec s = spec;
        s.precision = -1;
        std::string body = FormatInt(v < 0 ? -v : v, {.type = 'd'}, line);
        if (spec.precision > 0 && body.size() < static_cast<size_t>(spec.precision))
          body = std::string(static_cast<size_t>(spec.precision) - body.size(), '0') + body;
        out += Pad(s, SignOf(v < 0, spec.sign), body, '>');
        break;
      }
      case 'x':
      case 'X':
      case 'o':
      case 'c': {
        if (!arg->is_int()) {
          throw TemplateError(line, fmt::format("format: %{} format: an integer is required, "
                                                "not {}",
                                                type, arg->TypeName()));
        }
        Spec s = spec;
        s.type = type;
        s.precision = -1;
        out += FormatInt(arg->as_int(), s, line);
        break;
      }
      case 'e':
      case 'E':
      case 'f':
      case 'F':
      case 'g':
      case 'G': {
        if (!arg->is_number() && !arg->is_bool()) {
          throw TemplateError(line,
                              fmt::format("format: must be real number, not {}", arg->TypeName()));
        }
        Spec s = spec;
        s.type = type;
        if (s.precision < 0) s.precision = 6;
        double v = arg->is_bool() ? double(arg->as_bool()) : arg->as_number();
        out += FormatFloat(v, s, line);
        break;
      }
      default:
        throw TemplateError(line, fmt::format("format: unsupported format character '{}'", type));
    }
  }
  if (!used_mapping && !mapping && next < positional.size()) {
    throw TemplateError(line, "format: not all arguments converted during string formatting");
  }
  return out;
}

std::string PyJsonDumps(const Value& value, bool sort_keys, bool html_safe) {
  std::string out;
  Json(value, sort_keys, html_safe, out);
  return out;
}

}  // namespace pdv::transform::jinja
