// Environment::Render: evaluates a parsed template. Scopes follow Jinja: a for loop and a
// macro call open a scope, `set` writes to the innermost one, if/else do not open one.
//
// One file because Renderer is one tree-walking interpreter over jinja_ast.h: statements,
// expressions, macro calls and scopes share its state. What needs no renderer state lives
// beside it: filters and tests (jinja_filters.cc), str/list/dict methods
// (jinja_methods.cc), Python's formatting (jinja_format.cc).

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <exception>
#include <optional>
#include <utility>

#include "transform/jinja.h"
#include "transform/jinja_ast.h"
#include "transform/jinja_filters.h"
#include "transform/jinja_format.h"
#include "transform/jinja_methods.h"

namespace pdv::transform::jinja {
namespace {

// Thrown by return(value) inside a macro; caught by the macro call.
struct ReturnSignal {
  Value value;
};

// Thrown by {% break %} and {% continue %}; caught by the innermost loop.
struct BreakSignal {};
struct ContinueSignal {};

// Nested macro calls and recursive loops allowed before a render stops with an error
// (rather than overflowing the stack), as Python's recursion limit does.
constexpr int kMaxCallDepth = 200;

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
    ValueDict scope = BindParams(m, args);
    // The macro sees the globals and its own arguments, not the caller's locals; a macro
    // defined in the template being rendered also sees that template's top-level names
    // (itself among them, for recursion), as in Jinja.
    std::vector<ValueDict> frame_scopes;
    frame_scopes.push_back(std::move(scope));
    bool sees_toplevel = current_tmpl_ && def.tmpl.get() == current_tmpl_.get();
    Frame frame(*this, std::move(frame_scopes), def.tmpl->name(), def.package, sees_toplevel);
    std::string out;
    try {
      RenderNodes(m.body, out);
    } catch (ReturnSignal& r) {
      return std::move(r.value);
    }
    return Value(std::move(out));
  }

  // A macro's (or a call block's caller's) parameters bound to `args`, with varargs,
  // kwargs and caller.
  ValueDict BindParams(const Node& m, const Arguments& args) {
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
    return scope;
  }

  Value EvalExpression(const Expr& e) { return Eval(e); }

  // The file a TemplateError arose in (a macro's file while inside it).
  const std::string& file() const { return file_; }
  // The line of the statement being rendered when an error arose.
  int line() const { return line_; }

 private:
  // Enters another frame (a macro's body, or a call block's): its scopes, file and package,
  // the caller's restored on leaving. Left by an error, the file stays the inner one, so
  // that the message names where the error arose.
  class Frame {
   public:
    Frame(Renderer& r, std::vector<ValueDict> scopes, std::string file, std::string package,
          bool sees_toplevel)
        : r_(r),
          scopes_(std::exchange(r.scopes_, std::move(scopes))),
          file_(std::exchange(r.file_, std::move(file))),
          package_(std::exchange(r.package_, std::move(package))),
          sees_toplevel_(std::exchange(r.sees_toplevel_, sees_toplevel)),
          line_(r.line_),
          exceptions_(std::uncaught_exceptions()) {
      // Leaving the outermost frame, the template's top-level scope is the first of the
      // scopes saved here (they stay put while saved).
      if (r.depth_ == 0 && !scopes_.empty()) r.toplevel_ = &scopes_.front();
      if (++r.depth_ > kMaxCallDepth) {
        Restore();
        throw TemplateError(r.line_, fmt::format("maximum recursion depth ({}) exceeded in "
                                                 "macro calls",
                                                 kMaxCallDepth));
      }
    }
    Frame(const Frame&) = delete;
    Frame& operator=(const Frame&) = delete;
    ~Frame() {
      if (std::uncaught_exceptions() == exceptions_) {
        r_.file_ = std::move(file_);
        r_.line_ = line_;
      }
      Restore();
    }

   private:
    void Restore() {
      r_.scopes_ = std::move(scopes_);
      r_.package_ = std::move(package_);
      r_.sees_toplevel_ = sees_toplevel_;
      if (--r_.depth_ == 0) r_.toplevel_ = nullptr;
    }

    Renderer& r_;
    std::vector<ValueDict> scopes_;
    std::string file_, package_;
    bool sees_toplevel_;
    int line_;
    int exceptions_;
  };

  // Enters a scope of the current frame (a loop's, a with block's); leaves it on any exit.
  class Scope {
   public:
    Scope(Renderer& r, ValueDict scope) : r_(r), depth_(r.scopes_.size()) {
      r.scopes_.push_back(std::move(scope));
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    ~Scope() {
      if (r_.scopes_.size() > depth_) r_.scopes_.resize(depth_);
    }

   private:
    Renderer& r_;
    size_t depth_;
  };

  void RenderNode(const Node& n, std::string& out) {
    line_ = n.line;
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
      case Node::Kind::kBreak:
        throw BreakSignal{};
      case Node::Kind::kContinue:
        throw ContinueSignal{};
      case Node::Kind::kFilterBlock: {
        std::string body;
        RenderNodes(n.body, body);
        ValueDict scope;
        scope.Set(Node::kFilterBlockName, Value(std::move(body)));
        Scope s(*this, std::move(scope));
        out += Eval(*n.expr).Str();
        return;
      }
      case Node::Kind::kWith: {
        // Every value is computed before any name is set: `with a = 1, b = a` reads the
        // outer a.
        ValueDict scope;
        for (size_t i = 0; i < n.params.size(); ++i) scope.Set(n.params[i], Eval(*n.defaults[i]));
        Scope s(*this, std::move(scope));
        RenderNodes(n.body, out);
        return;
      }
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
    bool closure_toplevel = sees_toplevel_;
    const Node* block = &n;
    a.named.emplace_back(
        "caller", Value(Function([this, closure, closure_file, closure_package, closure_toplevel,
                                  block](const Arguments& args) {
          // {% call(x, y) %}: caller(x, y) binds the block's own parameters.
          std::vector<ValueDict> scopes = closure;
          scopes.emplace_back();
          Frame frame(*this, std::move(scopes), closure_file, closure_package, closure_toplevel);
          if (!block->params.empty() || !args.positional.empty() || !args.named.empty()) {
            scopes_.back() = BindParams(*block, args);
          }
          std::string out;
          RenderNodes(block->body, out);
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
    const ValueList* items = v.is_list()                        ? &v.list()
                             : v.is_dict() && v.dict().sequence ? v.dict().sequence.get()
                                                                : nullptr;
    if (!items || items->size() != targets.size()) {
      throw TemplateError(
          line, fmt::format("cannot unpack {} into {} names",
                            items ? fmt::format("{} values", items->size()) : v.TypeName(),
                            targets.size()));
    }
    for (size_t i = 0; i < targets.size(); ++i) scopes_.back().Set(targets[i], (*items)[i]);
  }

  ValueList LoopItems(const Node& n, const Value& seq) {
    ValueList items;
    if (seq.is_list()) {
      items = seq.list();
    } else if (seq.is_dict() && seq.dict().sequence) {
      items = *seq.dict().sequence;
    } else if (seq.is_dict() && !seq.dict().operators) {
      for (const auto& [k, v] : seq.dict().items) items.emplace_back(k);
    } else if (seq.is_string()) {
      for (char c : seq.as_string()) items.emplace_back(std::string(1, c));
    } else if (!seq.is_undefined() &&
               !seq.is_none()) {  // undefined loops over nothing, as in Jinja
      throw TemplateError(n.line, fmt::format("'{}' object is not iterable", seq.TypeName()));
    }
    return items;
  }

  void RenderFor(const Node& n, std::string& out) { RenderLoop(n, Eval(*n.expr), 0, out); }

  // One loop over `seq` at recursion `depth` (0 for the loop as written; loop(items) in a
  // recursive loop renders the body again one deeper).
  void RenderLoop(const Node& n, const Value& seq, int depth, std::string& out) {
    ValueList items = LoopItems(n, seq);
    Scope loop_scope(*this, ValueDict{});
    // `for x in seq if cond`: the items are filtered first, so loop.length and
    // loop.index count only those kept (and else runs when none is).
    if (n.condition) {
      ValueList kept;
      for (const auto& item : items) {
        Assign(n.targets, item, n.line);
        if (Eval(*n.condition).Truthy()) kept.push_back(item);
      }
      items = std::move(kept);
      scopes_.back().items.clear();
    }
    if (items.empty()) {
      RenderNodes(n.else_body, out);
      return;
    }
    if (depth >= kMaxCallDepth) {
      throw TemplateError(n.line, fmt::format("maximum recursion depth ({}) exceeded in a "
                                              "recursive loop",
                                              kMaxCallDepth));
    }
    const int64_t length = static_cast<int64_t>(items.size());
    auto last_changed = std::make_shared<std::optional<ValueList>>();
    for (int64_t i = 0; i < length; ++i) {
      const auto at = static_cast<size_t>(i);
      ValueDict loop;
      loop.Set("index", Value(i + 1));
      loop.Set("index0", Value(i));
      loop.Set("revindex", Value(length - i));
      loop.Set("revindex0", Value(length - i - 1));
      loop.Set("first", Value(i == 0));
      loop.Set("last", Value(i == length - 1));
      loop.Set("length", Value(length));
      loop.Set("depth", Value(int64_t{depth} + 1));
      loop.Set("depth0", Value(int64_t{depth}));
      loop.Set("previtem", i > 0 ? items[at - 1] : Value::MakeUndefined("previtem"));
      loop.Set("nextitem", i + 1 < length ? items[at + 1] : Value::MakeUndefined("nextitem"));
      loop.Set("cycle", Value(Function([i](const Arguments& a) -> Value {
                 if (a.positional.empty())
                   throw TemplateError(a.line, "no items for cycling given");
                 return a.positional[static_cast<size_t>(i) % a.positional.size()];
               })));
      loop.Set("changed", Value(Function([last_changed](const Arguments& a) {
                 if (*last_changed && **last_changed == a.positional) return Value(false);
                 *last_changed = a.positional;
                 return Value(true);
               })));
      if (n.recursive) {
        loop.call = std::make_shared<Function>([this, &n, depth](const Arguments& a) {
          if (a.positional.size() != 1) throw TemplateError(a.line, "loop() takes one iterable");
          std::string inner;
          RenderLoop(n, a.positional[0], depth + 1, inner);
          return Value(std::move(inner));
        });
      }
      scopes_.back().Set("loop", Value(std::move(loop)));
      Assign(n.targets, items[at], n.line);
      try {
        RenderNodes(n.body, out);
      } catch (const ContinueSignal&) {
      } catch (const BreakSignal&) {
        break;
      }
    }
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
    if (sees_toplevel_ && toplevel_) {
      if (const Value* v = toplevel_->Find(name)) return *v;
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
        if (!a.positional.empty() && a.positional[0].is_dict()) {
          for (const auto& [k, v] : a.positional[0].dict().items) d.Set(k, v);
        }
        for (const auto& [k, v] : a.named) d.Set(k, v);
        return Value(std::move(d));
      }));
    }
    if (name == "joiner") return Value(Function(Joiner));
    if (name == "cycler") return Value(Function(Cycler));
    return Value::MakeUndefined(name);
  }

  // joiner(sep=", "): "" the first time it is called, sep after.
  static Value Joiner(const Arguments& a) {
    const Value* sep = a.Get(0, "sep");
    std::string text = sep ? sep->Str() : ", ";
    auto used = std::make_shared<bool>(false);
    return Value(Function([text, used](const Arguments&) {
      return Value(std::exchange(*used, true) ? text : std::string());
    }));
  }

  // cycler(a, b, ...): .next() walks the items round, .current, .reset().
  static Value Cycler(const Arguments& a) {
    if (a.positional.empty()) throw TemplateError(a.line, "cycler() needs items");
    auto items = std::make_shared<ValueList>(a.positional);
    auto state = std::make_shared<ValueDict>();
    auto pos = std::make_shared<size_t>(0);
    state->Set("current", (*items)[0]);
    std::weak_ptr<ValueDict> self = state;
    state->Set("next", Value(Function([items, pos, self](const Arguments&) {
                 Value v = (*items)[*pos];
                 *pos = (*pos + 1) % items->size();
                 if (auto s = self.lock()) s->Set("current", (*items)[*pos]);
                 return v;
               })));
    state->Set("reset", Value(Function([items, pos, self](const Arguments&) {
                 *pos = 0;
                 if (auto s = self.lock()) s->Set("current", (*items)[0]);
                 return Value();
               })));
    return Value(std::move(*state));
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

  [[noreturn]] static void Undefined(const Value& v, int line) { ThrowUndefined(v, line); }

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
        return e.tuple ? Value::Tuple(std::move(list)) : Value(std::move(list));
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
    // Objects with operators (dates, datetimes, timedeltas).
    for (const Value* obj : {&a, &b}) {
      if (obj->is_dict() && obj->dict().operators) {
        bool left = obj == &a;
        if (auto r = (*obj->dict().operators)(op, left ? b : a, left)) return *r;
      }
    }
    if (op == "%" && a.is_string()) return Value(PrintfFormat(a.as_string(), b, e.line));
    if (op == "*" && ((a.is_list() && b.is_int()) || (a.is_int() && b.is_list()))) {
      const ValueList& l = a.is_list() ? a.list() : b.list();
      int64_t times = a.is_int() ? a.as_int() : b.as_int();
      ValueList out;
      for (int64_t i = 0; i < times; ++i) out.insert(out.end(), l.begin(), l.end());
      return Value(std::move(out));
    }
    if (op == "*" && a.is_int() && b.is_string()) {
      std::string s;
      for (int64_t i = 0; i < a.as_int(); ++i) s += b.as_string();
      return Value(std::move(s));
    }
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
    auto numeric = [](const Value& v) {
      return v.is_bool() ? Value(static_cast<int64_t>(v.as_bool())) : v;
    };
    if (!(a.is_number() || a.is_bool()) || !(b.is_number() || b.is_bool())) {
      throw TemplateError(e.line, fmt::format("unsupported operand type(s) for {}: '{}' and '{}'",
                                              op, a.TypeName(), b.TypeName()));
    }
    return Arithmetic(op, numeric(a), numeric(b), e.line);
  }

  static Value Arithmetic(const std::string& op, const Value& a, const Value& b, int line) {
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
    if (b.as_number() == 0) throw TemplateError(line, "division by zero");
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
      double r = std::fmod(a.as_number(), b.as_number());
      if (r != 0 && ((r < 0) != (b.as_number() < 0))) r += b.as_number();
      return Value(r);
    }
    throw TemplateError(line, fmt::format("unsupported operator {}", op));
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
  int line_ = 0;                         // of the statement being rendered
  int depth_ = 0;                        // frames entered (macro calls, caller bodies)
  const ValueDict* toplevel_ = nullptr;  // the template's top-level scope while in a frame
  bool sees_toplevel_ = false;           // the current frame is a macro of that template
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
  } catch (const std::exception& e) {
    return Status::Error(fmt::format("{}:{}: {}", r.file(), r.line(), e.what()));
  } catch (const BreakSignal&) {
    return Status::Error(fmt::format("{}:{}: break outside a loop", r.file(), r.line()));
  } catch (const ContinueSignal&) {
    return Status::Error(fmt::format("{}:{}: continue outside a loop", r.file(), r.line()));
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
  } catch (const std::exception& e) {
    return Status::Error(fmt::format("{}: {}", r.file(), e.what()));
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
  } catch (const std::exception& e) {
    return Status::Error(fmt::format("{}:{}: {}", r.file(), r.line(), e.what()));
  }
}

}  // namespace pdv::transform::jinja
