#pragma once

// The parsed form of a template: statements (Node) holding expressions (Expr).

#include <memory>
#include <string>
#include <vector>

#include "transform/jinja_value.h"

namespace pdv::transform::jinja {

struct Expr {
  enum class Kind {
    kLiteral,    // literal
    kName,       // text
    kAttr,       // args[0].text
    kIndex,      // args[0][args[1]]
    kSlice,      // args[0][args[1]:args[2]:args[3]], each part null when left out
    kCall,       // args[0](args[1..]); names[i] is the keyword of args[i+1] ("" positional)
    kFilter,     // args[0] | text(args[1..]) with names as for kCall
    kTest,       // args[0] is [not] text(args[1..]); negate
    kUnary,      // text ("-", "not") args[0]
    kBinary,     // args[0] text args[1]: arithmetic, comparison, in, and, or, ~
    kCondition,  // args[0] if args[1] else args[2] (args[2] may be absent)
    kList,       // [args...], a tuple (args...) when `tuple`
    kDict,       // {args[0]: args[1], ...}
  };
  Kind kind;
  int line = 0;
  std::string text;
  Value literal;
  bool negate = false;
  bool tuple = false;
  std::vector<std::unique_ptr<Expr>> args;
  std::vector<std::string> names;
};

struct Node;
using NodeList = std::vector<std::unique_ptr<Node>>;

struct Node {
  enum class Kind {
    kText,          // text
    kOutput,        // {{ expr }}
    kIf,            // branches: (condition, body); else branch has a null condition
    kFor,           // for targets in expr [if condition] [recursive]: body, else_body
    kSet,           // set targets = expr
    kSetBlock,      // set targets[0] %}body{% endset
    kMacro,         // macro text(params = defaults): body
    kDo,            // do expr
    kSetAttribute,  // set targets[0].text = expr, or to body when expr is null
    kCallBlock,     // call(params = defaults) expr (a kCall) %}body{% endcall: the body is the
                    // callee's caller(args)
    kSnapshot,      // snapshot text %}body{% endsnapshot: dbt's snapshot; renders its body
    kBreak,         // break (loopcontrols)
    kContinue,      // continue (loopcontrols)
    kFilterBlock,   // filter chain %}body{% endfilter: expr applies the chain to the name
                    // kFilterBlockName, which holds the rendered body
    kWith,          // with params = defaults %}body{% endwith: a scope with those names
  };
  static constexpr char kFilterBlockName[] = "__pdv_filter_block__";
  Kind kind;
  int line = 0;
  std::string text;
  std::unique_ptr<Expr> expr;
  std::vector<std::string> targets;
  std::vector<std::pair<std::unique_ptr<Expr>, NodeList>> branches;
  NodeList body;
  NodeList else_body;
  std::vector<std::string> params;
  std::vector<std::unique_ptr<Expr>> defaults;  // per param, null when none
  std::unique_ptr<Expr> condition;              // kFor: the `if` filter, null when none
  bool recursive = false;                       // kFor: `recursive`, loop(items) renders again
};

}  // namespace pdv::transform::jinja
