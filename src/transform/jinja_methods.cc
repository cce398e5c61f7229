// Python's str, list and dict methods as template values call them (jinja_methods.h).

#include "transform/jinja_methods.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "transform/jinja_format.h"

namespace pdv::transform::jinja {
namespace {

bool IsPySpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
char Up(char c) { return static_cast<char>(std::toupper(static_cast<unsigned char>(c))); }
char Down(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

const std::string& StrArg(const Arguments& a, size_t i, const char* method, const char* name) {
  const Value* v = a.Get(i, name);
  if (!v || !v->is_string()) {
    throw TemplateError(a.line, fmt::format("{}() needs a string argument '{}'", method, name));
  }
  return v->as_string();
}

int64_t IntArg(const Arguments& a, size_t i, const char* method, const char* name,
               int64_t fallback) {
  const Value* v = a.Get(i, name);
  if (!v || v->is_none()) return fallback;
  if (!v->is_int()) {
    throw TemplateError(
        a.line, fmt::format("{}() needs an integer '{}', not {}", method, name, v->TypeName()));
  }
  return v->as_int();
}

// Python's slice bounds for find/count/index(sub, start, end).
std::pair<size_t, size_t> Bounds(const Arguments& a, size_t first, int64_t n, const char* m) {
  auto clamp = [n](int64_t x) { return std::clamp<int64_t>(x < 0 ? x + n : x, 0, n); };
  int64_t start = clamp(IntArg(a, first, m, "start", 0));
  int64_t end = clamp(IntArg(a, first + 1, m, "end", n));
  return {static_cast<size_t>(start), static_cast<size_t>(std::max(start, end))};
}

ValueList Split(const std::string& s, const Value* sep_arg, int64_t maxsplit, bool from_right,
                int line) {
  std::vector<std::string> parts;
  if (!sep_arg || sep_arg->is_none()) {
    // Runs of whitespace, none at the ends.
    std::vector<std::pair<size_t, size_t>> words;
    size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && IsPySpace(s[i])) ++i;
      if (i >= s.size()) break;
      size_t j = i;
      while (j < s.size() && !IsPySpace(s[j])) ++j;
      words.emplace_back(i, j);
      i = j;
    }
    if (maxsplit < 0 || static_cast<size_t>(maxsplit) + 1 >= words.size()) {
      for (auto [b, e] : words) parts.push_back(s.substr(b, e - b));
    } else if (!from_right) {
      for (size_t k = 0; k < static_cast<size_t>(maxsplit); ++k)
        parts.push_back(s.substr(words[k].first, words[k].second - words[k].first));
      size_t rest = words[static_cast<size_t>(maxsplit)].first, end = s.size();
      while (end > rest && IsPySpace(s[end - 1])) --end;
      parts.push_back(s.substr(rest, end - rest));
    } else {
      size_t keep = words.size() - static_cast<size_t>(maxsplit);
      parts.push_back(s.substr(0, words[keep - 1].second));
      for (size_t k = keep; k < words.size(); ++k)
        parts.push_back(s.substr(words[k].first, words[k].second - words[k].first));
    }
  } else {
    if (!sep_arg->is_string()) throw TemplateError(line, "split(): the separator must be a str");
    const std::string& sep = sep_arg->as_string();
    if (sep.empty()) throw TemplateError(line, "split(): empty separator");
    if (!from_right) {
      size_t pos = 0, next;
      while ((maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) &&
             (next = s.find(sep, pos)) != std::string::npos) {
        parts.push_back(s.substr(pos, next - pos));
        pos = next + sep.size();
      }
      parts.push_back(s.substr(pos));
    } else {
      size_t end = s.size();
      while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
        if (end < sep.size()) break;
        size_t at = s.rfind(sep, end - sep.size());
        if (at == std::string::npos) break;
        parts.push_back(s.substr(at + sep.size(), end - at - sep.size()));
        end = at;
      }
      parts.push_back(s.substr(0, end));
      std::reverse(parts.begin(), parts.end());
    }
  }
  ValueList out;
  for (auto& p : parts) out.emplace_back(std::move(p));
  return out;
}

std::string Justify(const std::string& s, const Arguments& a, const char* method, char align) {
  int64_t width = IntArg(a, 0, method, "width", -1);
  if (width < 0 && !a.Get(0, "width"))
    throw TemplateError(a.line, fmt::format("{}() needs a width", method));
  std::string fill = " ";
  if (const Value* f = a.Get(1, "fillchar")) {
    if (!f->is_string() || f->as_string().size() != 1)
      throw TemplateError(a.line,
                          fmt::format("{}(): the fill character must be one character", method));
    fill = f->as_string();
  }
  if (width <= static_cast<int64_t>(s.size())) return s;
  size_t pad = static_cast<size_t>(width) - s.size();
  if (align == '<') return s + std::string(pad, fill[0]);
  if (align == '>') return std::string(pad, fill[0]) + s;
  // Python's center puts the odd pad on the left when the width is odd.
  size_t left = pad / 2 + (pad & static_cast<size_t>(width) & 1);
  return std::string(left, fill[0]) + s + std::string(pad - left, fill[0]);
}

bool All(const std::string& s, int (*pred)(int)) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!pred(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

Value StrMethod(const std::string& s, const std::string& name) {
  auto fn = [](auto f) { return Value(Function(std::move(f))); };
  if (name == "lower" || name == "casefold") {
    return fn([s](const Arguments&) {
      std::string r = s;
      for (char& c : r) c = Down(c);
      return Value(r);
    });
  }
  if (name == "upper") {
    return fn([s](const Arguments&) {
      std::string r = s;
      for (char& c : r) c = Up(c);
      return Value(r);
    });
  }
  if (name == "swapcase") {
    return fn([s](const Arguments&) {
      std::string r = s;
      for (char& c : r) c = std::isupper(static_cast<unsigned char>(c)) ? Down(c) : Up(c);
      return Value(r);
    });
  }
  if (name == "capitalize") {
    return fn([s](const Arguments&) {
      std::string r = s;
      for (char& c : r) c = Down(c);
      if (!r.empty()) r[0] = Up(r[0]);
      return Value(r);
    });
  }
  if (name == "title") {
    return fn([s](const Arguments&) {
      std::string r = s;
      bool prev_cased = false;
      for (char& c : r) {
        bool alpha = std::isalpha(static_cast<unsigned char>(c));
        c = alpha ? (prev_cased ? Down(c) : Up(c)) : c;
        prev_cased = alpha;
      }
      return Value(r);
    });
  }
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    return fn([s, name](const Arguments& a) {
      const Value* chars = a.Get(0, "chars");
      bool ws = !chars || chars->is_none();
      std::string set = ws ? "" : chars->Str();
      auto strip = [&](char c) { return ws ? IsPySpace(c) : set.find(c) != std::string::npos; };
      size_t b = 0, e = s.size();
      if (name != "rstrip")
        while (b < e && strip(s[b])) ++b;
      if (name != "lstrip")
        while (e > b && strip(s[e - 1])) --e;
      return Value(s.substr(b, e - b));
    });
  }
  if (name == "replace") {
    return fn([s](const Arguments& a) {
      const std::string& from = StrArg(a, 0, "replace", "old");
      const std::string& to = StrArg(a, 1, "replace", "new");
      int64_t count = IntArg(a, 2, "replace", "count", -1);
      std::string out;
      if (from.empty()) {
        // Python inserts `to` around every character.
        int64_t n = 0;
        for (size_t i = 0; i <= s.size(); ++i) {
          if (count < 0 || n < count) {
            out += to;
            ++n;
          }
          if (i < s.size()) out += s[i];
        }
        return Value(out);
      }
      size_t pos = 0, next;
      int64_t n = 0;
      while ((count < 0 || n < count) && (next = s.find(from, pos)) != std::string::npos) {
        out += s.substr(pos, next - pos) + to;
        pos = next + from.size();
        ++n;
      }
      return Value(out + s.substr(pos));
    });
  }
  if (name == "startswith" || name == "endswith") {
    return fn([s, name](const Arguments& a) {
      const Value* p = a.Get(0, "prefix");
      if (!p) throw TemplateError(a.line, name + "() needs an argument");
      ValueList options = p->is_list() ? p->list() : ValueList{*p};
      for (const auto& o : options) {
        if (!o.is_string()) throw TemplateError(a.line, name + "() takes strings");
        const std::string& x = o.as_string();
        if (x.size() > s.size()) continue;
        if (name == "startswith" ? s.compare(0, x.size(), x) == 0
                                 : s.compare(s.size() - x.size(), x.size(), x) == 0)
          return Value(true);
      }
      return Value(false);
    });
  }
  if (name == "split" || name == "rsplit") {
    return fn([s, name](const Arguments& a) {
      return Value(Split(s, a.Get(0, "sep"), IntArg(a, 1, name.c_str(), "maxsplit", -1),
                         name == "rsplit", a.line));
    });
  }
  if (name == "splitlines") {
    return fn([s](const Arguments& a) {
      const Value* keep = a.Get(0, "keepends");
      bool keepends = keep && keep->Truthy();
      ValueList out;
      size_t start = 0;
      for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\n' || s[i] == '\r') {
          size_t end = i;
          if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
          out.emplace_back(s.substr(start, (keepends ? i + 1 : end) - start));
          start = i + 1;
        }
      }
      if (start < s.size()) out.emplace_back(s.substr(start));
      return Value(out);
    });
  }
  if (name == "join") {
    return fn([s](const Arguments& a) {
      const Value* items = a.Get(0, "iterable");
      if (!items || !(items->is_list() || items->is_dict()))
        throw TemplateError(a.line, "join() takes a list");
      ValueList list = items->is_list() ? items->list() : ValueList{};
      if (items->is_dict()) {
        for (const auto& [k, v] : items->dict().items) list.emplace_back(k);
      }
      std::string out;
      for (size_t i = 0; i < list.size(); ++i) {
        if (!list[i].is_string()) {
          throw TemplateError(a.line, fmt::format("join(): sequence item {}: expected str "
                                                  "instance, {} found",
                                                  i, list[i].TypeName()));
        }
        out += (i ? s : "") + list[i].as_string();
      }
      return Value(out);
    });
  }
  if (name == "format") {
    return fn([s](const Arguments& a) { return Value(StrFormat(s, a)); });
  }
  if (name == "zfill") {
    return fn([s](const Arguments& a) {
      int64_t width = IntArg(a, 0, "zfill", "width", 0);
      if (width <= static_cast<int64_t>(s.size())) return Value(s);
      size_t pad = static_cast<size_t>(width) - s.size();
      bool sign = !s.empty() && (s[0] == '-' || s[0] == '+');
      return Value(sign ? s.substr(0, 1) + std::string(pad, '0') + s.substr(1)
                        : std::string(pad, '0') + s);
    });
  }
  if (name == "center")
    return fn([s](const Arguments& a) { return Value(Justify(s, a, "center", '^')); });
  if (name == "ljust")
    return fn([s](const Arguments& a) { return Value(Justify(s, a, "ljust", '<')); });
  if (name == "rjust")
    return fn([s](const Arguments& a) { return Value(Justify(s, a, "rjust", '>')); });
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    return fn([s, name](const Arguments& a) -> Value {
      const std::string& sub = StrArg(a, 0, name.c_str(), "sub");
      auto [b, e] = Bounds(a, 1, static_cast<int64_t>(s.size()), name.c_str());
      std::string part = s.substr(b, e - b);
      if (name == "count") {
        if (sub.empty()) return Value(static_cast<int64_t>(part.size() + 1));
        int64_t n = 0;
        for (size_t p = part.find(sub); p != std::string::npos; p = part.find(sub, p + sub.size()))
          ++n;
        return Value(n);
      }
      bool right = name[0] == 'r';
      size_t at = right ? part.rfind(sub) : part.find(sub);
      if (at == std::string::npos) {
        if (name.ends_with("index")) throw TemplateError(a.line, "substring not found");
        return Value(int64_t{-1});
      }
      return Value(static_cast<int64_t>(at + b));
    });
  }
  if (name == "partition" || name == "rpartition") {
    return fn([s, name](const Arguments& a) {
      const std::string& sep = StrArg(a, 0, name.c_str(), "sep");
      if (sep.empty()) throw TemplateError(a.line, "empty separator");
      size_t at = name == "partition" ? s.find(sep) : s.rfind(sep);
      if (at == std::string::npos) {
        return name == "partition" ? Value::Tuple({Value(s), Value(""), Value("")})
                                   : Value::Tuple({Value(""), Value(""), Value(s)});
      }
      return Value::Tuple({Value(s.substr(0, at)), Value(sep), Value(s.substr(at + sep.size()))});
    });
  }
  if (name == "removeprefix" || name == "removesuffix") {
    return fn([s, name](const Arguments& a) {
      const std::string& x = StrArg(a, 0, name.c_str(), "prefix");
      if (name == "removeprefix") return Value(s.starts_with(x) ? s.substr(x.size()) : s);
      return Value(s.ends_with(x) ? s.substr(0, s.size() - x.size()) : s);
    });
  }
  auto predicate = [&](auto test) {
    return fn([s, test](const Arguments&) { return Value(test(s)); });
  };
  if (name == "isdigit" || name == "isdecimal" || name == "isnumeric")
    return predicate([](const std::string& x) { return All(x, isdigit); });
  if (name == "isalpha") return predicate([](const std::string& x) { return All(x, isalpha); });
  if (name == "isalnum") return predicate([](const std::string& x) { return All(x, isalnum); });
  if (name == "isspace") return predicate([](const std::string& x) { return All(x, isspace); });
  if (name == "isupper" || name == "islower") {
    bool upper = name == "isupper";
    return predicate([upper](const std::string& x) {
      bool cased = false;
      for (char c : x) {
        if (std::isalpha(static_cast<unsigned char>(c))) {
          cased = true;
          if ((std::isupper(static_cast<unsigned char>(c)) != 0) != upper) return false;
        }
      }
      return cased;
    });
  }
  if (name == "istitle") {
    return predicate([](const std::string& x) {
      bool prev = false, any = false;
      for (char c : x) {
        unsigned char u = static_cast<unsigned char>(c);
        if (std::isupper(u)) {
          if (prev) return false;
          prev = any = true;
        } else if (std::islower(u)) {
          if (!prev) return false;
        } else {
          prev = false;
        }
      }
      return any;
    });
  }
  return Value::MakeUndefined(name, "str");
}

size_t Index(const ValueList& l, int64_t i, int line, const char* what, bool insert = false) {
  int64_t n = static_cast<int64_t>(l.size());
  if (i < 0) i += n;
  if (insert) return static_cast<size_t>(std::clamp<int64_t>(i, 0, n));
  if (i < 0 || i >= n) throw TemplateError(line, fmt::format("{} index out of range", what));
  return static_cast<size_t>(i);
}

Value ListMethod(const Value& obj, const std::string& name) {
  auto fn = [](auto f) { return Value(Function(std::move(f))); };
  if (name == "append") {
    return fn([obj](const Arguments& a) {
      if (a.positional.size() != 1) throw TemplateError(a.line, "append() takes one argument");
      obj.list().push_back(a.positional[0]);
      return Value();
    });
  }
  if (name == "extend") {
    return fn([obj](const Arguments& a) {
      const Value* more = a.Get(0, "iterable");
      if (!more || !more->is_list()) throw TemplateError(a.line, "extend() takes a list");
      ValueList add = more->list();
      obj.list().insert(obj.list().end(), add.begin(), add.end());
      return Value();
    });
  }
  if (name == "pop") {
    return fn([obj](const Arguments& a) {
      ValueList& l = obj.list();
      if (l.empty()) throw TemplateError(a.line, "pop from empty list");
      size_t i = Index(l, IntArg(a, 0, "pop", "index", -1), a.line, "pop");
      Value v = l[i];
      l.erase(l.begin() + static_cast<long>(i));
      return v;
    });
  }
  if (name == "insert") {
    return fn([obj](const Arguments& a) {
      if (a.positional.size() != 2) throw TemplateError(a.line, "insert() takes (index, object)");
      ValueList& l = obj.list();
      size_t i = Index(l, IntArg(a, 0, "insert", "index", 0), a.line, "insert", true);
      l.insert(l.begin() + static_cast<long>(i), a.positional[1]);
      return Value();
    });
  }
  if (name == "remove") {
    return fn([obj](const Arguments& a) {
      if (a.positional.size() != 1) throw TemplateError(a.line, "remove() takes one argument");
      ValueList& l = obj.list();
      auto it = std::find(l.begin(), l.end(), a.positional[0]);
      if (it == l.end()) throw TemplateError(a.line, "list.remove(x): x not in list");
      l.erase(it);
      return Value();
    });
  }
  if (name == "index" || name == "count") {
    return fn([obj, name](const Arguments& a) {
      if (a.positional.empty()) throw TemplateError(a.line, name + "() needs a value");
      const ValueList& l = obj.list();
      if (name == "count") {
        return Value(static_cast<int64_t>(std::count(l.begin(), l.end(), a.positional[0])));
      }
      auto [b, e] = Bounds(a, 1, static_cast<int64_t>(l.size()), "index");
      for (size_t i = b; i < e; ++i) {
        if (l[i] == a.positional[0]) return Value(static_cast<int64_t>(i));
      }
      throw TemplateError(a.line, fmt::format("{} is not in list", a.positional[0].Repr()));
    });
  }
  if (name == "sort") {
    return fn([obj](const Arguments& a) {
      const Value* key = a.Get(99, "key");
      const Value* rev = a.Get(99, "reverse");
      ValueList& l = obj.list();
      std::vector<std::pair<Value, Value>> keyed;
      for (const auto& v : l) {
        Value k = v;
        if (key && key->is_callable()) {
          Arguments ka;
          ka.line = a.line;
          ka.scope = a.scope;
          ka.positional.push_back(v);
          k = key->function()(ka);
        }
        keyed.emplace_back(std::move(k), v);
      }
      bool reverse = rev && rev->Truthy();
      std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
        return reverse ? Compare(y.first, x.first, a.line) < 0
                       : Compare(x.first, y.first, a.line) < 0;
      });
      for (size_t i = 0; i < l.size(); ++i) l[i] = keyed[i].second;
      return Value();
    });
  }
  if (name == "reverse") {
    return fn([obj](const Arguments&) {
      std::reverse(obj.list().begin(), obj.list().end());
      return Value();
    });
  }
  if (name == "copy") return fn([obj](const Arguments&) { return Value(ValueList(obj.list())); });
  if (name == "clear") {
    return fn([obj](const Arguments&) {
      obj.list().clear();
      return Value();
    });
  }
  return Value::MakeUndefined(name, "list");
}

Value DictMethod(const Value& obj, const std::string& name) {
  auto fn = [](auto f) { return Value(Function(std::move(f))); };
  if (name == "get") {
    return fn([obj](const Arguments& a) {
      const Value* key = a.Get(0, "key");
      if (!key) throw TemplateError(a.line, "get() needs a key");
      if (const Value* v = obj.dict().Find(key->Str())) return *v;
      const Value* d = a.Get(1, "default");
      return d ? *d : Value();
    });
  }
  if (name == "items" || name == "keys" || name == "values") {
    return fn([obj, name](const Arguments&) {
      ValueList out;
      for (const auto& [k, v] : obj.dict().items) {
        if (name == "items") out.emplace_back(ValueList{Value(k), v});
        if (name == "keys") out.emplace_back(k);
        if (name == "values") out.push_back(v);
      }
      return Value(std::move(out));
    });
  }
  if (name == "update") {
    return fn([obj](const Arguments& a) {
      if (!a.positional.empty()) {
        const Value& other = a.positional[0];
        if (other.is_dict()) {
          for (const auto& [k, v] : other.dict().items) obj.dict().Set(k, v);
        } else if (other.is_list()) {
          for (const auto& pair : other.list()) {
            if (!pair.is_list() || pair.list().size() != 2)
              throw TemplateError(a.line, "update(): a list of (key, value) pairs expected");
            obj.dict().Set(pair.list()[0].Str(), pair.list()[1]);
          }
        } else if (!other.is_none()) {
          throw TemplateError(a.line, "update() takes a dict");
        }
      }
      for (const auto& [k, v] : a.named) obj.dict().Set(k, v);
      return Value();
    });
  }
  if (name == "pop") {
    return fn([obj](const Arguments& a) {
      const Value* key = a.Get(0, "key");
      if (!key) throw TemplateError(a.line, "pop() needs a key");
      auto& items = obj.dict().items;
      for (auto it = items.begin(); it != items.end(); ++it) {
        if (it->first == key->Str()) {
          Value v = it->second;
          items.erase(it);
          return v;
        }
      }
      if (const Value* d = a.Get(1, "default")) return *d;
      throw TemplateError(a.line, fmt::format("KeyError: {}", key->Repr()));
    });
  }
  if (name == "popitem") {
    return fn([obj](const Arguments& a) {
      auto& items = obj.dict().items;
      if (items.empty()) throw TemplateError(a.line, "popitem(): dictionary is empty");
      Value pair(ValueList{Value(items.back().first), items.back().second});
      items.pop_back();
      return pair;
    });
  }
  if (name == "setdefault") {
    return fn([obj](const Arguments& a) {
      const Value* key = a.Get(0, "key");
      if (!key) throw TemplateError(a.line, "setdefault() needs a key");
      if (const Value* v = obj.dict().Find(key->Str())) return *v;
      const Value* d = a.Get(1, "default");
      Value v = d ? *d : Value();
      obj.dict().Set(key->Str(), v);
      return v;
    });
  }
  if (name == "copy") {
    return fn([obj](const Arguments&) {
      ValueDict d;
      d.items = obj.dict().items;
      return Value(std::move(d));
    });
  }
  if (name == "clear") {
    return fn([obj](const Arguments&) {
      obj.dict().items.clear();
      return Value();
    });
  }
  return Value::MakeUndefined(name, "dict");
}

}  // namespace

void ThrowUndefined(const Value& v, int line) { throw TemplateError(line, v.UndefinedMessage()); }

Value Attribute(const Value& obj, const std::string& name, int line) {
  if (obj.is_undefined()) ThrowUndefined(obj, line);
  if (obj.is_dict()) {
    if (const Value* v = obj.dict().Find(name)) return *v;
    // Objects with their own fields and operators (datetimes) have no dict methods.
    if (obj.dict().operators) {
      return Value::MakeUndefined(name, "object");
    }
    return DictMethod(obj, name);
  }
  if (obj.is_string()) return StrMethod(obj.as_string(), name);
  if (obj.is_list()) return ListMethod(obj, name);
  if (obj.is_int() || obj.is_double()) {
    if (name == "real") return obj;
    if (name == "imag") return obj.is_int() ? Value(0) : Value(0.0);
    if (name == "is_integer" && obj.is_double()) {
      double d = obj.as_number();
      return Value(Function([d](const Arguments&) { return Value(d == static_cast<int64_t>(d)); }));
    }
  }
  return Value::MakeUndefined(name, obj.TypeName());
}

Value Method(const Value& obj, const std::string& name) {
  if (obj.is_dict()) return DictMethod(obj, name);
  if (obj.is_string()) return StrMethod(obj.as_string(), name);
  if (obj.is_list()) return ListMethod(obj, name);
  return Value::MakeUndefined(name, obj.TypeName());
}

Value Item(const Value& obj, const Value& key, int line) {
  if (key.is_string() && key.as_string().find('.') != std::string::npos) {
    Value v = obj;
    const std::string& path = key.as_string();
    size_t pos = 0;
    while (true) {
      size_t dot = path.find('.', pos);
      v = Item(v, Value(path.substr(pos, dot == std::string::npos ? dot : dot - pos)), line);
      if (dot == std::string::npos) return v;
      pos = dot + 1;
    }
  }
  Value index = key;
  if (key.is_string() && !key.as_string().empty() &&
      std::all_of(key.as_string().begin(), key.as_string().end(),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    index = Value(static_cast<int64_t>(std::stoll(key.as_string())));
  }
  if (index.is_int()) {
    const ValueList* seq = obj.is_list()                          ? &obj.list()
                           : obj.is_dict() && obj.dict().sequence ? obj.dict().sequence.get()
                                                                  : nullptr;
    if (seq) {
      int64_t n = static_cast<int64_t>(seq->size());
      int64_t i = index.as_int() < 0 ? index.as_int() + n : index.as_int();
      if (i < 0 || i >= n) return Value::MakeUndefined(key.Str());
      return (*seq)[static_cast<size_t>(i)];
    }
  }
  if (obj.is_undefined()) ThrowUndefined(obj, line);
  if (obj.is_dict()) {
    if (const Value* v = obj.dict().Find(key.Str())) return *v;
    return Value::MakeUndefined(key.Str());
  }
  return Attribute(obj, key.Str(), line);
}

}  // namespace pdv::transform::jinja
