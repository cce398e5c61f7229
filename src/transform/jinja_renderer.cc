// Environment::Render: evaluates a parsed template. Scopes follow Jinja: a for loop and a
// macro call open a scope, `set` writes to the innermost one, if/else do not open one.
//
// One file because Renderer is one tree-walking interpreter over jinja_ast.h: statements,
// expressions, macro calls and scopes share its state. The filter and test tables
// (ApplyFilter, ApplyTest, ~280 lines) are members but use no renderer state besides each
// other (map/select/reject call them back), so they are the part that could move to a
// jinja_filters.cc if this file grows.

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <exception>
#include <optional>
#include <utility>

#include "transform/jinja.h"
#include "transform/jinja_ast.h"

namespace pdv::transform::jinja {
namespace {

// Thrown by return(value) inside a macro; caught by the macro call.
struct ReturnSignal {
  Value value;
};

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
std::string Strip(const std::string& s, bool left, bool right,
                  const std::string& chars = " \t\n\r") {
  size_t b = 0, e = s.size();
  if (left) {
    while (b < e && chars.find(s[b]) != std::string::npos) ++b;
  }
  if (right) {
    while (e > b && chars.find(s[e - 1]) != std::string::npos) --e;
  }
  return s.substr(b, e - b);
}
std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

int Compare(const Value& a, const Value& b, int line) {
  if (a.is_number() && b.is_number()) {
    double x = a.as_number(), y = b.as_number();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) return a.as_string().compare(b.as_string());
  if (a.is_bool() && b.is_bool()) return int(a.as_bool()) - int(b.as_bool());
  throw TemplateError(line, fmt::format("cannot compare {} with {}", a.TypeName(), b.TypeName()));
}

}  // namespace

class Renderer : public MacroScope {
 public:
  Renderer(const Environment& env, const ValueDict& globals, const std::string& file,
           const std::string& package)
      : env_(env),
        globals_(globals),
        file_(file),
        node_package_(package.empty() ? env.root_ : package),
        package_(node_package_) {
    scopes_.emplace_back();
  }

  Value FindMacro(const std::string& package, const std::string& name) override {
    return Bind(env_.Find(package, name));
  }
  Value FindMacro(const std::string& name) override {
    return Bind(env_.Search(package_, node_package_, name));
  }

  void RenderNodes(const NodeList& nodes, std::string& out) {
    for (const auto& n : nodes) RenderNode(*n, out);
  }

  Value CallMacro(const Environment::MacroDef& def, const Arguments& args) {
    const Node& m = *def.node;
    ValueDict scope;
    size_t used_positional = 0;
    for (size_t i = 0; i < m.params.size(); ++i) {
      const Value* given = nullptr;
      if (i < args.positional.size()) {
        given = &args.positional[i];
        ++used_positional;
      } else {
        for (const auto& [k, v] : args.named) {
          if (k == m.params[i]) given = &v;
        }
      }
      if (given) {
        scope.Set(m.params[i], *given);
      } else if (m.defaults[i]) {
        scope.Set(m.params[i], Eval(*m.defaults[i]));
      } else {
        scope.Set(m.params[i], Value::MakeUndefined(m.params[i]));
      }
    }
    ValueList varargs(args.positional.begin() + static_cast<long>(used_positional),
                      args.positional.end());
    ValueDict kwargs;
    for (const auto& [k, v] : args.named) {
      if (std::find(m.params.begin(), m.params.end(), k) == m.params.end()) kwargs.Set(k, v);
    }
    if (const Value* caller = kwargs.Find("caller")) scope.Set("caller", *caller);
    scope.Set("varargs", Value(std::move(varargs)));
    scope.Set("kwargs", Value(std::move(kwargs)));
    // The macro sees the globals and its own arguments, not the caller's locals.
    std::vector<ValueDict> frame_scopes;
    frame_scopes.push_back(std::move(scope));
    Frame frame(*this, std::move(frame_scopes), def.tmpl->name(), def.package);
    std::string out;
    try {
      RenderNodes(m.body, out);
    } catch (ReturnSignal& r) {
      return std::move(r.value);
    }
    return Value(std::move(out));
  }

  Value EvalExpression(const Expr& e) { return Eval(e); }

  // The file a TemplateError arose in (a macro's file while inside it).
  const std::string& file() const { return file_; }

 private:
  // Enters another frame (a macro's body, or a call block's): its scopes, file and package,
  // the caller's restored on leaving. Left by an error, the file stays the inner one, so
  // that the message names where the error arose.
  class Frame {
   public:
    Frame(Renderer& r, std::vector<ValueDict> scopes, std::string file, std::string package)
        : r_(r),
          scopes_(std::exchange(r.scopes_, std::move(scopes))),
          file_(std::exchange(r.file_, std::move(file))),
          package_(std::exchange(r.package_, std::move(package))),
          exceptions_(std::uncaught_exceptions()) {}
    Frame(const Frame&) = delete;
    Frame& operator=(const Frame&) = delete;
    ~Frame() {
      r_.scopes_ = std::move(scopes_);
      r_.package_ = std::move(package_);
      if (std::uncaught_exceptions() == exceptions_) r_.file_ = std::move(file_);
    }

   private:
    Renderer& r_;
    std::vector<ValueDict> scopes_;
    std::string file_, package_;
    int exceptions_;
  };

  void RenderNode(const Node& n, std::string& out) {
    switch (n.kind) {
      case Node::Kind::kText:
        out += n.text;
        return;
      case Node::Kind::kOutput: {
        Value v = Eval(*n.expr);
        out += v.Str();
        return;
      }
      case Node::Kind::kIf:
        for (const auto& [cond, body] : n.branches) {
          if (!cond || Eval(*cond).Truthy()) {
            RenderNodes(body, out);
            return;
          }
        }
        return;
      case Node::Kind::kFor:
        RenderFor(n, out);
        return;
      case Node::Kind::kSet: {
        Value v = Eval(*n.expr);
        Assign(n.targets, v, n.line);
        return;
      }
      case Node::Kind::kSetBlock: {
        std::string body;
        RenderNodes(n.body, body);
        scopes_.back().Set(n.targets[0], Value(std::move(body)));
        return;
      }
      case Node::Kind::kMacro: {
        // A macro defined inside a template: callable from the rest of it.
        Environment::MacroDef def{current_tmpl_, &n, package_};
        scopes_.back().Set(
            n.text, Value(Function([this, def](const Arguments& a) { return CallMacro(def, a); })));
        return;
      }
      case Node::Kind::kDo:
        Eval(*n.expr);
        return;
      case Node::Kind::kSetAttribute: {
        Value target = Lookup(n.targets[0]);
        if (!target.is_dict()) {
          throw TemplateError(
              n.line, fmt::format("cannot set attribute '{}' of {}", n.text, target.TypeName()));
        }
        if (n.expr) {
          target.dict().Set(n.text, Eval(*n.expr));
        } else {
          std::string body;
          RenderNodes(n.body, body);
          target.dict().Set(n.text, Value(std::move(body)));
        }
        return;
      }
      case Node::Kind::kCallBlock:
        out += CallWithCaller(n).Str();
        return;
      case Node::Kind::kSnapshot:
        RenderNodes(n.body, out);
        return;
    }
  }

  // {% call f(args) %}body{% endcall %}: f(args, caller=<renders body>). The body sees the
  // scopes where the block stands, as a closure does.
  Value CallWithCaller(const Node& n) {
    const Expr& call = *n.expr;
    Value fn = Eval(*call.args[0]);
    if (!fn.is_callable()) {
      throw TemplateError(
          n.line, fmt::format("{{% call %}} needs a macro, not {}",
                              fn.is_undefined() ? "'" + fn.undefined_name() + "' (undefined)"
                                                : fn.TypeName()));
    }
    Arguments a = EvalArgs(call, 1);
    std::vector<ValueDict> closure = scopes_;
    std::string closure_file = file_, closure_package = package_;
    const NodeList* body = &n.body;
    a.named.emplace_back(
        "caller",
        Value(Function([this, closure, closure_file, closure_package, body](const Arguments&) {
          std::vector<ValueDict> scopes = closure;
          scopes.emplace_back();
          Frame frame(*this, std::move(scopes), closure_file, closure_package);
          std::string out;
          RenderNodes(*body, out);
          return Value(std::move(out));
        })));
    return fn.function()(a);
  }

  // A macro definition as a callable of this render.
  Value Bind(const Environment::MacroDef* def) {
    if (!def) return Value::MakeUndefined("macro");
    Environment::MacroDef copy = *def;
    return Value(Function([this, copy](const Arguments& a) { return CallMacro(copy, a); }));
  }

  void Assign(const std::vector<std::string>& targets, const Value& v, int line) {
    if (targets.size() == 1) {
      scopes_.back().Set(targets[0], v);
      return;
    }
    if (!v.is_list() || v.list().size() != targets.size()) {
      throw TemplateError(
          line, fmt::format("cannot unpack {} into {} names", v.TypeName(), targets.size()));
    }
    for (size_t i = 0; i < targets.size(); ++i) scopes_.back().Set(targets[i], v.list()[i]);
  }

  void RenderFor(const Node& n, std::string& out) {
    Value seq = Eval(*n.expr);
    ValueList items;
    if (seq.is_list()) {
      items = seq.list();
    } else if (seq.is_dict() && seq.dict().sequence) {
      items = *seq.dict().sequence;
    } else if (seq.is_dict()) {
      for (const auto& [k, v] : seq.dict().items) items.emplace_back(k);
    } else if (seq.is_string()) {
      for (char c : seq.as_string()) items.emplace_back(std::string(1, c));
    } else if (!seq.is_undefined() &&
               !seq.is_none()) {  // undefined loops over nothing, as in Jinja
      throw TemplateError(n.line, fmt::format("cannot loop over {}", seq.TypeName()));
    }
    if (items.empty()) {
      RenderNodes(n.else_body, out);
      return;
    }
    scopes_.emplace_back();
    const int64_t length = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < length; ++i) {
      ValueDict loop;
      loop.Set("index", Value(i + 1));
      loop.Set("index0", Value(i));
      loop.Set("revindex", Value(length - i));
      loop.Set("revindex0", Value(length - i - 1));
      loop.Set("first", Value(i == 0));
      loop.Set("last", Value(i == length - 1));
      loop.Set("length", Value(length));
      scopes_.back().Set("loop", Value(std::move(loop)));
      Assign(n.targets, items[static_cast<size_t>(i)], n.line);
      RenderNodes(n.body, out);
    }
    scopes_.pop_back();
  }

  // `package.macro`: a dict of the package's macros, made once per render.
  Value Namespace(const std::string& package) {
    auto it = namespaces_.find(package);
    if (it != namespaces_.end()) return it->second;
    ValueDict d;
    for (const auto& [name, def] : env_.packages_.at(package)) d.Set(name, Bind(&def));
    // A global named "<package>.<macro>" (a unit test's macro override) stands for it.
    const std::string prefix = package + ".";
    for (const auto& [name, value] : globals_.items) {
      if (name.starts_with(prefix)) d.Set(name.substr(prefix.size()), value);
    }
    return namespaces_.emplace(package, Value(std::move(d))).first->second;
  }

  Value Lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      if (const Value* v = it->Find(name)) return *v;
    }
    if (const Value* v = globals_.Find(name)) return *v;
    auto* self = const_cast<Renderer*>(this);
    if (const auto* def = env_.Search(package_, node_package_, name)) return self->Bind(def);
    if (env_.HasPackage(name)) return self->Namespace(name);
    if (name == "return") {
      return Value(Function([](const Arguments& a) -> Value {
        throw ReturnSignal{a.positional.empty() ? Value() : a.positional[0]};
      }));
    }
    if (name == "range") return Value(Function(Range));
    if (name == "namespace" || name == "dict") {
      return Value(Function([](const Arguments& a) {
        ValueDict d;
        for (const auto& [k, v] : a.named) d.Set(k, v);
        return Value(std::move(d));
      }));
    }
    return Value::MakeUndefined(name);
  }

  static Value Range(const Arguments& a) {
    auto arg = [&](size_t i) {
      if (!a.positional[i].is_int()) throw TemplateError(a.line, "range() takes integers");
      return a.positional[i].as_int();
    };
    int64_t start = 0, stop = 0, step = 1;
    if (a.positional.size() == 1) {
      stop = arg(0);
    } else if (a.positional.size() >= 2) {
      start = arg(0);
      stop = arg(1);
      if (a.positional.size() == 3) step = arg(2);
    } else {
      throw TemplateError(a.line, "range() takes 1 to 3 arguments");
    }
    if (step == 0) throw TemplateError(a.line, "range() step must not be zero");
    ValueList out;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) out.emplace_back(i);
    return Value(std::move(out));
  }

  Arguments EvalArgs(const Expr& e, size_t first) {
    Arguments a;
    a.line = e.line;
    a.scope = this;
    for (size_t i = first; i < e.args.size(); ++i) {
      Value v = Eval(*e.args[i]);
      const std::string& name = e.names[i - first];
      if (name == "**") {
        if (!v.is_dict()) throw TemplateError(e.line, "** needs a dict, not " + v.TypeName());
        for (const auto& [k, x] : v.dict().items) a.named.emplace_back(k, x);
      } else if (name == "*") {
        if (!v.is_list()) throw TemplateError(e.line, "* needs a list, not " + v.TypeName());
        for (const auto& x : v.list()) a.positional.push_back(x);
      } else if (name.empty()) {
        a.positional.push_back(std::move(v));
      } else {
        a.named.emplace_back(name, std::move(v));
      }
    }
    return a;
  }

  [[noreturn]] static void Undefined(const Value& v, int line) {
    throw TemplateError(line, fmt::format("'{}' is undefined", v.undefined_name()));
  }

  Value Eval(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::kLiteral:
        return e.literal;
      case Expr::Kind::kName:
        return Lookup(e.text);
      case Expr::Kind::kAttr:
        return Attribute(Eval(*e.args[0]), e.text, e.line);
      case Expr::Kind::kIndex: {
        Value obj = Eval(*e.args[0]);
        Value key = Eval(*e.args[1]);
        if (obj.is_undefined()) Undefined(obj, e.line);
        if (obj.is_dict() && obj.dict().sequence && key.is_int()) {
          const ValueList& seq = *obj.dict().sequence;
          int64_t n = static_cast<int64_t>(seq.size());
          int64_t i = key.as_int() < 0 ? key.as_int() + n : key.as_int();
          if (i < 0 || i >= n) throw TemplateError(e.line, "index out of range");
          return seq[static_cast<size_t>(i)];
        }
        if (obj.is_dict()) {
          const Value* v = obj.dict().Find(key.Str());
          return v ? *v : Value::MakeUndefined(key.Str());
        }
        if ((obj.is_list() || obj.is_string()) && key.is_int()) {
          int64_t n = obj.is_list() ? static_cast<int64_t>(obj.list().size())
                                    : static_cast<int64_t>(obj.as_string().size());
          int64_t i = key.as_int() < 0 ? key.as_int() + n : key.as_int();
          if (i < 0 || i >= n) throw TemplateError(e.line, "index out of range");
          if (obj.is_list()) return obj.list()[static_cast<size_t>(i)];
          return Value(std::string(1, obj.as_string()[static_cast<size_t>(i)]));
        }
        throw TemplateError(e.line,
                            fmt::format("cannot index {} with {}", obj.TypeName(), key.TypeName()));
      }
      case Expr::Kind::kSlice:
        return Slice(e);
      case Expr::Kind::kCall: {
        Value fn = Eval(*e.args[0]);
        if (fn.is_undefined()) {
          throw TemplateError(e.line, fmt::format("'{}' is undefined (unknown function or macro)",
                                                  fn.undefined_name()));
        }
        Arguments a = EvalArgs(e, 1);
        if (fn.is_dict() && fn.dict().call) return (*fn.dict().call)(a);
        if (!fn.is_callable()) {
          throw TemplateError(e.line, fmt::format("{} is not callable", fn.TypeName()));
        }
        return fn.function()(a);
      }
      case Expr::Kind::kFilter:
        return ApplyFilter(e.text, Eval(*e.args[0]), EvalArgs(e, 1), e.line);
      case Expr::Kind::kTest: {
        bool r = ApplyTest(e.text, Eval(*e.args[0]), EvalArgs(e, 1), e.line);
        return Value(e.negate ? !r : r);
      }
      case Expr::Kind::kUnary: {
        Value v = Eval(*e.args[0]);
        if (e.text == "not") return Value(!v.Truthy());
        if (v.is_int()) return Value(-v.as_int());
        if (v.is_double()) return Value(-v.as_number());
        throw TemplateError(e.line, fmt::format("cannot negate {}", v.TypeName()));
      }
      case Expr::Kind::kBinary:
        return EvalBinary(e);
      case Expr::Kind::kCondition:
        if (Eval(*e.args[1]).Truthy()) return Eval(*e.args[0]);
        return e.args.size() > 2 ? Eval(*e.args[2]) : Value::MakeUndefined("else");
      case Expr::Kind::kList: {
        ValueList list;
        for (const auto& a : e.args) list.push_back(Eval(*a));
        return Value(std::move(list));
      }
      case Expr::Kind::kDict: {
        ValueDict d;
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          d.Set(Eval(*e.args[i]).Str(), Eval(*e.args[i + 1]));
        }
        return Value(std::move(d));
      }
    }
    return Value();
  }

  // Python's slicing of a list or str.
  Value Slice(const Expr& e) {
    Value obj = Eval(*e.args[0]);
    if (obj.is_undefined()) Undefined(obj, e.line);
    if (!obj.is_list() && !obj.is_string()) {
      throw TemplateError(e.line, fmt::format("cannot slice {}", obj.TypeName()));
    }
    const int64_t n = obj.is_list() ? static_cast<int64_t>(obj.list().size())
                                    : static_cast<int64_t>(obj.as_string().size());
    auto part = [&](size_t i) -> std::optional<int64_t> {
      if (!e.args[i]) return std::nullopt;
      Value v = Eval(*e.args[i]);
      if (v.is_none()) return std::nullopt;
      if (!v.is_int()) throw TemplateError(e.line, "slice indices must be integers");
      return v.as_int();
    };
    int64_t step = part(3).value_or(1);
    if (step == 0) throw TemplateError(e.line, "slice step cannot be zero");
    auto clamp = [&](std::optional<int64_t> v, int64_t fallback) {
      if (!v) return fallback;
      int64_t x = *v < 0 ? *v + n : *v;
      return step > 0 ? std::clamp<int64_t>(x, 0, n) : std::clamp<int64_t>(x, -1, n - 1);
    };
    int64_t start = clamp(part(1), step > 0 ? 0 : n - 1);
    int64_t stop = clamp(part(2), step > 0 ? n : -1);
    ValueList items;
    std::string text;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (obj.is_list()) {
        items.push_back(obj.list()[static_cast<size_t>(i)]);
      } else {
        text += obj.as_string()[static_cast<size_t>(i)];
      }
    }
    return obj.is_list() ? Value(std::move(items)) : Value(std::move(text));
  }

  Value EvalBinary(const Expr& e) {
    const std::string& op = e.text;
    if (op == "and") {
      Value a = Eval(*e.args[0]);
      return a.Truthy() ? Eval(*e.args[1]) : a;
    }
    if (op == "or") {
      Value a = Eval(*e.args[0]);
      return a.Truthy() ? a : Eval(*e.args[1]);
    }
    Value a = Eval(*e.args[0]);
    Value b = Eval(*e.args[1]);
    if (op == "~") return Value(a.Str() + b.Str());
    if (op == "==") return Value(a == b);
    if (op == "!=") return Value(!(a == b));
    if (op == "<") return Value(Compare(a, b, e.line) < 0);
    if (op == ">") return Value(Compare(a, b, e.line) > 0);
    if (op == "<=") return Value(Compare(a, b, e.line) <= 0);
    if (op == ">=") return Value(Compare(a, b, e.line) >= 0);
    if (op == "in") {
      if (b.is_string() && a.is_string())
        return Value(b.as_string().find(a.as_string()) != std::string::npos);
      if (b.is_list()) {
        for (const auto& x : b.list()) {
          if (x == a) return Value(true);
        }
        return Value(false);
      }
      if (b.is_dict()) return Value(b.dict().Find(a.Str()) != nullptr);
      if (b.is_undefined()) Undefined(b, e.line);
      throw TemplateError(e.line,
                          fmt::format("'in' needs a str, list or dict, not {}", b.TypeName()));
    }
    if (a.is_undefined()) Undefined(a, e.line);
    if (b.is_undefined()) Undefined(b, e.line);
    if (op == "+") {
      if (a.is_string() && b.is_string()) return Value(a.as_string() + b.as_string());
      if (a.is_list() && b.is_list()) {
        ValueList l = a.list();
        l.insert(l.end(), b.list().begin(), b.list().end());
        return Value(std::move(l));
      }
    }
    if (op == "*" && a.is_string() && b.is_int()) {
      std::string s;
      for (int64_t i = 0; i < b.as_int(); ++i) s += a.as_string();
      return Value(std::move(s));
    }
    if (!a.is_number() || !b.is_number()) {
      throw TemplateError(e.line, fmt::format("unsupported operand types for {}: {} and {}", op,
                                              a.TypeName(), b.TypeName()));
    }
    bool ints = a.is_int() && b.is_int();
    if (op == "+")
      return ints ? Value(a.as_int() + b.as_int()) : Value(a.as_number() + b.as_number());
    if (op == "-")
      return ints ? Value(a.as_int() - b.as_int()) : Value(a.as_number() - b.as_number());
    if (op == "*")
      return ints ? Value(a.as_int() * b.as_int()) : Value(a.as_number() * b.as_number());
    if (op == "**") {
      if (ints && b.as_int() >= 0) {
        int64_t r = 1;
        for (int64_t i = 0; i < b.as_int(); ++i) r *= a.as_int();
        return Value(r);
      }
      return Value(std::pow(a.as_number(), b.as_number()));
    }
    if (b.as_number() == 0) throw TemplateError(e.line, "division by zero");
    if (op == "/") return Value(a.as_number() / b.as_number());
    if (op == "//") {
      if (ints) {
        int64_t q = a.as_int() / b.as_int();
        if ((a.as_int() % b.as_int() != 0) && ((a.as_int() < 0) != (b.as_int() < 0))) --q;
        return Value(q);
      }
      return Value(std::floor(a.as_number() / b.as_number()));
    }
    if (op == "%") {
      if (ints) {
        int64_t r = a.as_int() % b.as_int();
        if (r != 0 && ((r < 0) != (b.as_int() < 0))) r += b.as_int();
        return Value(r);
      }
      return Value(std::fmod(a.as_number(), b.as_number()));
    }
    throw TemplateError(e.line, fmt::format("unsupported operator {}", op));
  }

  // Jinja's getattr-or-item, as map(attribute=...) uses it: an integer indexes a sequence.
  Value Item(const Value& obj, const Value& key, int line) {
    if (key.is_int()) {
      const ValueList* seq = obj.is_list()                          ? &obj.list()
                             : obj.is_dict() && obj.dict().sequence ? obj.dict().sequence.get()
                                                                    : nullptr;
      if (seq) {
        int64_t n = static_cast<int64_t>(seq->size());
        int64_t i = key.as_int() < 0 ? key.as_int() + n : key.as_int();
        if (i < 0 || i >= n) throw TemplateError(line, "index out of range");
        return (*seq)[static_cast<size_t>(i)];
      }
    }
    return Attribute(obj, key.Str(), line);
  }

  // obj.name: a dict entry, or a method of str/list/dict bound to obj.
  Value Attribute(const Value& obj, const std::string& name, int line) {
    if (obj.is_undefined()) Undefined(obj, line);
    if (obj.is_dict()) {
      if (const Value* v = obj.dict().Find(name)) return *v;
      if (name == "get") {
        return Value(Function([obj](const Arguments& a) {
          const Value* key = a.Get(0, "key");
          if (!key) throw TemplateError(a.line, "get() needs a key");
          const Value* v = obj.dict().Find(key->Str());
          if (v) return *v;
          const Value* d = a.Get(1, "default");
          return d ? *d : Value();
        }));
      }
      if (name == "items" || name == "keys" || name == "values") {
        return Value(Function([obj, name](const Arguments&) {
          ValueList out;
          for (const auto& [k, v] : obj.dict().items) {
            if (name == "items") out.emplace_back(ValueList{Value(k), v});
            if (name == "keys") out.emplace_back(k);
            if (name == "values") out.push_back(v);
          }
          return Value(std::move(out));
        }));
      }
      if (name == "update") {
        return Value(Function([obj](const Arguments& a) {
          if (!a.positional.empty() && a.positional[0].is_dict()) {
            for (const auto& [k, v] : a.positional[0].dict().items) obj.dict().Set(k, v);
          }
          for (const auto& [k, v] : a.named) obj.dict().Set(k, v);
          return Value();
        }));
      }
      return Value::MakeUndefined(name);
    }
    if (obj.is_string()) {
      const std::string s = obj.as_string();
      auto str_arg = [](const Arguments& a, size_t i) -> std::string {
        if (i >= a.positional.size() || !a.positional[i].is_string()) {
          throw TemplateError(a.line, "expected a string argument");
        }
        return a.positional[i].as_string();
      };
      if (name == "lower")
        return Value(Function([s](const Arguments&) { return Value(Lower(s)); }));
      if (name == "upper")
        return Value(Function([s](const Arguments&) { return Value(Upper(s)); }));
      if (name == "strip" || name == "lstrip" || name == "rstrip") {
        return Value(Function([s, name](const Arguments& a) {
          std::string chars = a.positional.empty() ? " \t\n\r" : a.positional[0].Str();
          return Value(Strip(s, name != "rstrip", name != "lstrip", chars));
        }));
      }
      if (name == "replace") {
        return Value(Function([s, str_arg](const Arguments& a) {
          return Value(ReplaceAll(s, str_arg(a, 0), str_arg(a, 1)));
        }));
      }
      if (name == "startswith" || name == "endswith") {
        return Value(Function([s, name, str_arg](const Arguments& a) {
          std::string p = str_arg(a, 0);
          if (p.size() > s.size()) return Value(false);
          return Value(name == "startswith" ? s.compare(0, p.size(), p) == 0
                                            : s.compare(s.size() - p.size(), p.size(), p) == 0);
        }));
      }
      if (name == "split") {
        return Value(Function([s](const Arguments& a) {
          ValueList out;
          if (a.positional.empty()) {
            std::string cur;
            for (char c : s) {
              if (c == ' ' || c == '\t' || c == '\n') {
                if (!cur.empty()) out.emplace_back(cur);
                cur.clear();
              } else {
                cur += c;
              }
            }
            if (!cur.empty()) out.emplace_back(cur);
            return Value(std::move(out));
          }
          std::string sep = a.positional[0].Str();
          if (sep.empty()) throw TemplateError(a.line, "empty separator");
          size_t pos = 0, next;
          while ((next = s.find(sep, pos)) != std::string::npos) {
            out.emplace_back(s.substr(pos, next - pos));
            pos = next + sep.size();
          }
          out.emplace_back(s.substr(pos));
          return Value(std::move(out));
        }));
      }
      if (name == "join") {
        return Value(Function([s](const Arguments& a) {
          if (a.positional.empty() || !a.positional[0].is_list()) {
            throw TemplateError(a.line, "join() takes a list");
          }
          std::string out;
          for (size_t i = 0; i < a.positional[0].list().size(); ++i) {
            out += (i ? s : "") + a.positional[0].list()[i].Str();
          }
          return Value(std::move(out));
        }));
      }
    }
    if (obj.is_list()) {
      if (name == "append") {
        return Value(Function([obj](const Arguments& a) {
          for (const auto& v : a.positional) obj.list().push_back(v);
          return Value();
        }));
      }
      if (name == "extend") {
        return Value(Function([obj](const Arguments& a) {
          if (!a.positional.empty() && a.positional[0].is_list()) {
            ValueList add = a.positional[0].list();
            obj.list().insert(obj.list().end(), add.begin(), add.end());
          }
          return Value();
        }));
      }
    }
    throw TemplateError(line, fmt::format("{} has no attribute '{}'", obj.TypeName(), name));
  }

  Value ApplyFilter(const std::string& name, const Value& v, const Arguments& a, int line) {
    auto need_string = [&]() -> std::string {
      if (v.is_undefined()) Undefined(v, line);
      return v.Str();
    };
    auto need_list = [&]() -> ValueList {
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
      if (v.is_undefined()) Undefined(v, line);
      throw TemplateError(line,
                          fmt::format("filter '{}' needs a sequence, not {}", name, v.TypeName()));
    };
    if (name == "default" || name == "d") {
      const Value* fallback = a.Get(0, "default_value");
      const Value* boolean = a.Get(1, "boolean");
      bool use = v.is_undefined() || (boolean && boolean->Truthy() && !v.Truthy());
      return use ? (fallback ? *fallback : Value("")) : v;
    }
    if (name == "lower") return Value(Lower(need_string()));
    if (name == "upper") return Value(Upper(need_string()));
    if (name == "trim") return Value(Strip(need_string(), true, true));
    if (name == "string") return Value(v.Str());
    if (name == "capitalize") {
      std::string s = Lower(need_string());
      if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
      return Value(s);
    }
    if (name == "title") {
      std::string s = Lower(need_string());
      bool start = true;
      for (char& c : s) {
        if (start && std::isalpha(static_cast<unsigned char>(c))) {
          c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        }
        start = !std::isalnum(static_cast<unsigned char>(c));
      }
      return Value(s);
    }
    if (name == "replace") {
      if (a.positional.size() < 2) throw TemplateError(line, "replace needs two arguments");
      return Value(ReplaceAll(need_string(), a.positional[0].Str(), a.positional[1].Str()));
    }
    if (name == "length" || name == "count") {
      if (v.is_string()) return Value(static_cast<int64_t>(v.as_string().size()));
      if (v.is_dict() && !v.dict().sequence)
        return Value(static_cast<int64_t>(v.dict().items.size()));
      return Value(static_cast<int64_t>(need_list().size()));
    }
    if (name == "join") {
      const Value* sep = a.Get(0, "d");
      const Value* attr = a.Get(1, "attribute");
      std::string out;
      ValueList items = need_list();
      for (size_t i = 0; i < items.size(); ++i) {
        if (i && sep) out += sep->Str();
        out += attr ? Attribute(items[i], attr->Str(), line).Str() : items[i].Str();
      }
      return Value(std::move(out));
    }
    if (name == "first" || name == "last") {
      ValueList items = need_list();
      if (items.empty()) return Value::MakeUndefined(name);
      return name == "first" ? items.front() : items.back();
    }
    if (name == "list") return Value(need_list());
    if (name == "reverse") {
      if (v.is_string()) return Value(std::string(v.as_string().rbegin(), v.as_string().rend()));
      ValueList items = need_list();
      std::reverse(items.begin(), items.end());
      return Value(std::move(items));
    }
    if (name == "sort") {
      ValueList items = need_list();
      const Value* rev = a.Get(0, "reverse");
      std::stable_sort(items.begin(), items.end(),
                       [&](const Value& x, const Value& y) { return Compare(x, y, line) < 0; });
      if (rev && rev->Truthy()) std::reverse(items.begin(), items.end());
      return Value(std::move(items));
    }
    if (name == "unique") {
      ValueList out;
      for (const auto& x : need_list()) {
        if (std::find(out.begin(), out.end(), x) == out.end()) out.push_back(x);
      }
      return Value(std::move(out));
    }
    // Jinja's map, select and their kin return nothing for none, as its generators do.
    auto seq_or_empty = [&]() -> ValueList {
      return v.is_none() || v.is_undefined() ? ValueList{} : need_list();
    };
    if (name == "map") {
      const Value* attr = a.Get(99, "attribute");
      ValueList out;
      for (const auto& x : seq_or_empty()) {
        if (attr) {
          out.push_back(Item(x, *attr, line));
        } else if (!a.positional.empty()) {
          Arguments rest{.line = line};
          rest.positional.assign(a.positional.begin() + 1, a.positional.end());
          out.push_back(ApplyFilter(a.positional[0].Str(), x, rest, line));
        } else {
          throw TemplateError(line, "map needs a filter name or attribute=");
        }
      }
      return Value(std::move(out));
    }
    if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
      bool by_attr = name.ends_with("attr");
      bool keep_when = name.starts_with("select");
      size_t test_at = by_attr ? 1 : 0;
      ValueList out;
      for (const auto& x : seq_or_empty()) {
        Value subject = by_attr ? Item(x, a.positional.at(0), line) : x;
        bool r;
        if (a.positional.size() > test_at) {
          Arguments rest{.line = line};
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
    if (name == "sum") {
      const Value* attr = a.Get(99, "attribute");
      const Value* start = a.Get(99, "start");
      Value total = start ? *start : Value(0);
      for (const auto& x : seq_or_empty()) {
        Value item = attr ? Item(x, *attr, line) : x;
        if (!item.is_number() || !total.is_number()) {
          throw TemplateError(line, "sum needs numbers, not " + item.TypeName());
        }
        total = total.is_int() && item.is_int() ? Value(total.as_int() + item.as_int())
                                                : Value(total.as_number() + item.as_number());
      }
      return total;
    }
    if (name == "min" || name == "max") {
      ValueList items = need_list();
      if (items.empty()) return Value::MakeUndefined(name);
      Value best = items[0];
      for (const auto& x : items) {
        int c = Compare(x, best, line);
        if ((name == "min" && c < 0) || (name == "max" && c > 0)) best = x;
      }
      return best;
    }
    if (name == "items" || name == "dictsort") {
      if (!v.is_dict()) throw TemplateError(line, name + " needs a dict, not " + v.TypeName());
      ValueList out;
      for (const auto& [k, x] : v.dict().items) out.emplace_back(ValueList{Value(k), x});
      if (name == "dictsort") {
        std::stable_sort(out.begin(), out.end(), [&](const Value& p, const Value& q) {
          return Compare(p.list()[0], q.list()[0], line) < 0;
        });
      }
      return Value(std::move(out));
    }
    if (name == "int") {
      if (v.is_int()) return v;
      if (v.is_double()) return Value(static_cast<int64_t>(v.as_number()));
      if (v.is_bool()) return Value(static_cast<int64_t>(v.as_bool()));
      try {
        return Value(static_cast<int64_t>(std::stoll(Strip(v.Str(), true, true))));
      } catch (const std::exception&) {
        const Value* d = a.Get(0, "default");
        return d ? *d : Value(int64_t{0});
      }
    }
    if (name == "float") {
      if (v.is_number()) return Value(v.as_number());
      try {
        return Value(std::stod(Strip(v.Str(), true, true)));
      } catch (const std::exception&) {
        const Value* d = a.Get(0, "default");
        return d ? *d : Value(0.0);
      }
    }
    if (name == "abs") {
      if (v.is_int()) return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
      if (v.is_double()) return Value(std::fabs(v.as_number()));
    }
    if (name == "round") {
      if (!v.is_number()) throw TemplateError(line, "round needs a number");
      const Value* p = a.Get(0, "precision");
      double scale = std::pow(10.0, p && p->is_int() ? static_cast<double>(p->as_int()) : 0.0);
      return Value(std::round(v.as_number() * scale) / scale);
    }
    if (name == "tojson") return Value(ToJson(v).dump());
    // dbt's native filters: the text read back as the value it spells.
    if (name == "as_text") return Value(v.Str());
    if (name == "as_bool" || name == "as_number" || name == "as_native") {
      if (!v.is_string()) return v;
      std::string t = Strip(v.as_string(), true, true);
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
      throw TemplateError(
          line, fmt::format("'{}' is not a {}", t, name == "as_bool" ? "boolean" : "number"));
    }
    if (name == "indent") {
      const Value* w = a.Get(0, "width");
      std::string pad(w && w->is_int() ? static_cast<size_t>(w->as_int()) : 4, ' ');
      return Value(ReplaceAll(need_string(), "\n", "\n" + pad));
    }
    throw TemplateError(line, fmt::format("unsupported filter '{}'", name));
  }

  bool ApplyTest(const std::string& name, const Value& v, const Arguments& a, int line) {
    if (name == "defined") return !v.is_undefined();
    if (name == "undefined") return v.is_undefined();
    if (name == "none") return v.is_none();
    if (name == "string") return v.is_string();
    if (name == "number") return v.is_number();
    if (name == "integer") return v.is_int();
    if (name == "float") return v.is_double();
    if (name == "boolean") return v.is_bool();
    if (name == "true") return v.is_bool() && v.as_bool();
    if (name == "false") return v.is_bool() && !v.as_bool();
    if (name == "mapping") return v.is_dict();
    if (name == "sequence" || name == "iterable")
      return v.is_list() || v.is_string() || v.is_dict();
    if (name == "callable") return v.is_callable() || (v.is_dict() && v.dict().call);
    if (name == "even" || name == "odd") {
      if (!v.is_int()) throw TemplateError(line, fmt::format("'{}' test needs an integer", name));
      return (v.as_int() % 2 == 0) == (name == "even");
    }
    if (name == "eq" || name == "equalto" || name == "==") {
      return !a.positional.empty() && v == a.positional[0];
    }
    if (name == "in") {
      if (a.positional.empty() || !a.positional[0].is_list()) return false;
      const auto& l = a.positional[0].list();
      return std::find(l.begin(), l.end(), v) != l.end();
    }
    throw TemplateError(line, fmt::format("unsupported test 'is {}'", name));
  }

 public:
  std::shared_ptr<const Template> current_tmpl_;

 private:
  const Environment& env_;
  const ValueDict& globals_;
  std::string file_;
  const std::string node_package_;
  std::string package_;  // of the macro being rendered (the node's at the top level)
  std::vector<ValueDict> scopes_;
  std::map<std::string, Value> namespaces_;
};

std::vector<std::string> Environment::AddMacros(const std::shared_ptr<const Template>& tmpl,
                                                const std::string& package) {
  const std::string& pkg = package.empty() ? root_ : package;
  auto& macros = packages_[pkg];
  std::vector<std::string> names;
  for (const auto& n : tmpl->nodes()) {
    if (n->kind == Node::Kind::kMacro) {
      macros[n->text] = MacroDef{tmpl, n.get(), pkg};
      names.push_back(n->text);
    }
  }
  return names;
}

const Environment::MacroDef* Environment::Find(const std::string& package,
                                               const std::string& name) const {
  auto p = packages_.find(package.empty() ? root_ : package);
  if (p == packages_.end()) return nullptr;
  auto m = p->second.find(name);
  return m == p->second.end() ? nullptr : &m->second;
}

const Environment::MacroDef* Environment::Search(const std::string& macro_package,
                                                 const std::string& node_package,
                                                 const std::string& name) const {
  for (const std::string* pkg : {&macro_package, &node_package, &root_}) {
    if (const MacroDef* def = Find(*pkg, name)) return def;
  }
  return Find(kGlobalPackage, name);
}

bool Environment::HasMacro(const std::string& package, const std::string& name) const {
  return Find(package, name) != nullptr;
}

Result<std::string> Environment::Render(const Template& tmpl, const ValueDict& globals,
                                        const std::string& package) const {
  Renderer r(*this, globals, tmpl.name(), package);
  // Inline macros keep the template alive only for the render; a non-owning alias is enough.
  r.current_tmpl_ = std::shared_ptr<const Template>(std::shared_ptr<const Template>(), &tmpl);
  std::string out;
  try {
    r.RenderNodes(tmpl.nodes(), out);
  } catch (const TemplateError& e) {
    return Status::Error(fmt::format("{}:{}: {}", r.file(), e.line(), e.what()));
  } catch (const ReturnSignal&) {
    return Status::Error(fmt::format("{}: return() outside a macro", tmpl.name()));
  }
  return out;
}

Result<Value> Environment::Evaluate(const std::string& expression, const std::string& where,
                                    const ValueDict& globals, const std::string& package) const {
  auto tmpl = Template::Parse("{{ " + expression + " }}", where);
  if (!tmpl.ok()) return tmpl.status();
  const auto& nodes = (*tmpl)->nodes();
  if (nodes.size() != 1 || nodes[0]->kind != Node::Kind::kOutput) {
    return Status::Error(fmt::format("{}: not one expression: {}", where, expression));
  }
  Renderer r(*this, globals, where, package);
  try {
    return r.EvalExpression(*nodes[0]->expr);
  } catch (const TemplateError& e) {
    return Status::Error(fmt::format("{}: {}", r.file(), e.what()));
  } catch (const ReturnSignal&) {
    return Status::Error(fmt::format("{}: return() outside a macro", where));
  }
}

Result<Value> Environment::CallMacro(const std::string& name, const Arguments& args,
                                     const ValueDict& globals, const std::string& package,
                                     const std::string& macro_package) const {
  const std::string& pkg = package.empty() ? root_ : package;
  const MacroDef* def = macro_package.empty() ? Search(pkg, pkg, name) : Find(macro_package, name);
  if (!def) return Status::Error(fmt::format("no macro named '{}'", name));
  Renderer r(*this, globals, def->tmpl->name(), pkg);
  try {
    return r.CallMacro(*def, args);
  } catch (const TemplateError& e) {
    return Status::Error(fmt::format("{}:{}: {}", r.file(), e.line(), e.what()));
  }
}

}  // namespace pdv::transform::jinja
