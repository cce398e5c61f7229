// Template::Parse: splits the source into text, {{ }}, {% %} and {# #} segments (with
// whitespace control), then parses statements and expressions by recursive descent.
//
// One file because its stages (Split, Tokenize, ExprParser, StatementParser) are one
// pipeline private to Template::Parse: StatementParser runs an ExprParser over each tag and
// {{ }}, and no other file uses their types.

#include <fmt/format.h>

#include <cctype>
#include <set>

#include "transform/jinja.h"
#include "transform/jinja_ast.h"

namespace pdv::transform::jinja {
namespace {

struct Segment {
  enum class Kind { kText, kOutput, kStatement } kind;
  std::string text;
  int line;
};

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

int LineAt(const std::string& s, size_t pos, size_t from, int line) {
  for (size_t i = from; i < pos && i < s.size(); ++i) line += s[i] == '\n';
  return line;
}

// Splits into segments; `{%-`/`-%}` (and the same for {{ and {#) strip the whitespace
// before/after the tag. {% raw %}...{% endraw %} becomes text.
std::vector<Segment> Split(const std::string& src) {
  std::vector<Segment> out;
  size_t pos = 0;
  int line = 1;
  bool strip_next = false;
  auto add_text = [&](std::string text) {
    if (strip_next) {
      size_t i = 0;
      while (i < text.size() && IsSpace(text[i])) ++i;
      text.erase(0, i);
      strip_next = false;
    }
    if (!text.empty()) out.push_back({Segment::Kind::kText, std::move(text), line});
  };
  while (pos < src.size()) {
    size_t open = src.find('{', pos);
    while (open != std::string::npos && open + 1 < src.size() && src[open + 1] != '{' &&
           src[open + 1] != '%' && src[open + 1] != '#') {
      open = src.find('{', open + 1);
    }
    if (open == std::string::npos || open + 1 >= src.size()) {
      add_text(src.substr(pos));
      break;
    }
    char kind = src[open + 1];
    std::string text = src.substr(pos, open - pos);
    int tag_line = LineAt(src, open, pos, line);
    bool strip_before = open + 2 < src.size() && src[open + 2] == '-';
    if (strip_before) {
      while (!text.empty() && IsSpace(text.back())) text.pop_back();
    }
    add_text(std::move(text));
    line = tag_line;
    std::string close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
    size_t body_start = open + 2 + (strip_before ? 1 : 0);
    // The tag ends at the first closing delimiter outside a string literal: a string may
    // hold "{{ this }}" (hooks in config()).
    size_t end = std::string::npos;
    char quote = 0;
    for (size_t i = body_start; i + 1 < src.size(); ++i) {
      char ch = src[i];
      if (kind != '#' && quote) {
        if (ch == '\\') {
          ++i;
        } else if (ch == quote) {
          quote = 0;
        }
      } else if (kind != '#' && (ch == '\'' || ch == '"')) {
        quote = ch;
      } else if (ch == close[0] && src[i + 1] == close[1]) {
        end = i;
        break;
      }
    }
    if (end == std::string::npos) {
      throw TemplateError(tag_line, fmt::format("'{{{}' is never closed with '{}'", kind, close));
    }
    size_t body_end = end;
    bool strip_after = body_end > body_start && src[body_end - 1] == '-';
    if (strip_after) --body_end;
    std::string body = src.substr(body_start, body_end - body_start);
    pos = end + 2;
    if (kind == '%') {
      std::string trimmed = body;
      while (!trimmed.empty() && IsSpace(trimmed.back())) trimmed.pop_back();
      size_t s = 0;
      while (s < trimmed.size() && IsSpace(trimmed[s])) ++s;
      trimmed.erase(0, s);
      if (trimmed == "raw") {
        size_t search = pos;
        size_t raw_end = std::string::npos, raw_close = 0;
        while (true) {
          size_t p = src.find("{%", search);
          if (p == std::string::npos) break;
          size_t q = src.find("%}", p);
          if (q == std::string::npos) break;
          std::string tag = src.substr(p + 2, q - p - 2);
          std::string t;
          for (char c : tag) {
            if (!IsSpace(c) && c != '-') t += c;
          }
          if (t == "endraw") {
            raw_end = p;
            raw_close = q + 2;
            break;
          }
          search = q + 2;
        }
        if (raw_end == std::string::npos) {
          throw TemplateError(tag_line, "{% raw %} is never closed with {% endraw %}");
        }
        strip_next = strip_after;
        add_text(src.substr(pos, raw_end - pos));
        line = LineAt(src, raw_close, open, tag_line);
        pos = raw_close;
        continue;
      }
    }
    line = LineAt(src, pos, open, line);
    if (kind == '{') out.push_back({Segment::Kind::kOutput, std::move(body), tag_line});
    if (kind == '%') out.push_back({Segment::Kind::kStatement, std::move(body), tag_line});
    strip_next = strip_after;
  }
  return out;
}

struct Token {
  enum class Kind { kName, kString, kInt, kFloat, kOp, kEnd } kind;
  std::string text;
};

std::vector<Token> Tokenize(const std::string& s, int line) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (IsSpace(c)) {
      ++i;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      out.push_back({Token::Kind::kName, s.substr(i, j - i)});
      i = j;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t j = i;
      bool is_float = false;
      while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '_' ||
                              (s[j] == '.' && !is_float && j + 1 < s.size() &&
                               std::isdigit(static_cast<unsigned char>(s[j + 1]))))) {
        is_float |= s[j] == '.';
        ++j;
      }
      std::string text;
      for (size_t k = i; k < j; ++k) {
        if (s[k] != '_') text += s[k];
      }
      out.push_back({is_float ? Token::Kind::kFloat : Token::Kind::kInt, text});
      i = j;
    } else if (c == '\'' || c == '"') {
      std::string text;
      size_t j = i + 1;
      for (; j < s.size() && s[j] != c; ++j) {
        if (s[j] == '\\' && j + 1 < s.size()) {
          char e = s[++j];
          text += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
        } else {
          text += s[j];
        }
      }
      if (j >= s.size()) throw TemplateError(line, "unterminated string literal");
      out.push_back({Token::Kind::kString, text});
      i = j + 1;
    } else {
      static const char* kOps[] = {"==", "!=", "<=", ">=", "//", "**", "<", ">", "+",
                                   "-",  "*",  "/",  "%",  "~",  "(",  ")", "[", "]",
                                   "{",  "}",  ",",  ".",  ":",  "|",  "="};
      bool found = false;
      for (const char* op : kOps) {
        size_t n = std::char_traits<char>::length(op);
        if (s.compare(i, n, op) == 0) {
          out.push_back({Token::Kind::kOp, op});
          i += n;
          found = true;
          break;
        }
      }
      if (!found) throw TemplateError(line, fmt::format("unexpected character '{}'", c));
    }
  }
  out.push_back({Token::Kind::kEnd, ""});
  return out;
}

// Parses one expression (or statement header) from its tokens.
class ExprParser {
 public:
  ExprParser(const std::string& text, int line) : tokens_(Tokenize(text, line)), line_(line) {}

  bool AtEnd() const { return tokens_[pos_].kind == Token::Kind::kEnd; }
  bool PeekOp(const char* op) const {
    return tokens_[pos_].kind == Token::Kind::kOp && tokens_[pos_].text == op;
  }
  bool PeekName(const char* name) const {
    return tokens_[pos_].kind == Token::Kind::kName && tokens_[pos_].text == name;
  }
  bool AcceptOp(const char* op) {
    if (!PeekOp(op)) return false;
    ++pos_;
    return true;
  }
  bool AcceptName(const char* name) {
    if (!PeekName(name)) return false;
    ++pos_;
    return true;
  }
  void ExpectOp(const char* op) {
    if (!AcceptOp(op)) Fail(fmt::format("expected '{}'", op));
  }
  std::string ExpectName() {
    if (tokens_[pos_].kind != Token::Kind::kName) Fail("expected a name");
    return tokens_[pos_++].text;
  }
  void ExpectEnd() {
    if (!AtEnd()) Fail("unexpected trailing text");
  }
  [[noreturn]] void Fail(const std::string& what) const {
    const Token& t = tokens_[pos_];
    throw TemplateError(line_, fmt::format("{} at '{}'", what,
                                           t.kind == Token::Kind::kEnd ? "end of tag" : t.text));
  }

  std::unique_ptr<Expr> Parse() {
    auto e = ParseOr();
    if (AcceptName("if")) {
      auto cond = Make(Expr::Kind::kCondition);
      cond->args.push_back(std::move(e));
      cond->args.push_back(ParseOr());
      if (AcceptName("else")) cond->args.push_back(Parse());
      return cond;
    }
    return e;
  }

  // A comma-separated list of expressions: a tuple if more than one.
  std::unique_ptr<Expr> ParseTuple() {
    auto first = Parse();
    if (!PeekOp(",")) return first;
    auto list = Make(Expr::Kind::kList);
    list->args.push_back(std::move(first));
    while (AcceptOp(",")) {
      if (AtEnd()) break;
      list->args.push_back(Parse());
    }
    return list;
  }

 private:
  std::unique_ptr<Expr> Make(Expr::Kind kind) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line_;
    return e;
  }
  std::unique_ptr<Expr> Binary(std::string op, std::unique_ptr<Expr> a, std::unique_ptr<Expr> b) {
    auto e = Make(Expr::Kind::kBinary);
    e->text = std::move(op);
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    return e;
  }

  std::unique_ptr<Expr> ParseOr() {
    auto e = ParseAnd();
    while (AcceptName("or")) e = Binary("or", std::move(e), ParseAnd());
    return e;
  }
  std::unique_ptr<Expr> ParseAnd() {
    auto e = ParseNot();
    while (AcceptName("and")) e = Binary("and", std::move(e), ParseNot());
    return e;
  }
  std::unique_ptr<Expr> ParseNot() {
    if (AcceptName("not")) {
      auto e = Make(Expr::Kind::kUnary);
      e->text = "not";
      e->args.push_back(ParseNot());
      return e;
    }
    return ParseCompare();
  }
  std::unique_ptr<Expr> ParseCompare() {
    auto e = ParseConcat();
    while (true) {
      static const char* kOps[] = {"==", "!=", "<=", ">=", "<", ">"};
      bool matched = false;
      for (const char* op : kOps) {
        if (AcceptOp(op)) {
          e = Binary(op, std::move(e), ParseConcat());
          matched = true;
          break;
        }
      }
      if (matched) continue;
      if (AcceptName("in")) {
        e = Binary("in", std::move(e), ParseConcat());
      } else if (PeekName("not") && pos_ + 1 < tokens_.size() &&
                 tokens_[pos_ + 1].kind == Token::Kind::kName && tokens_[pos_ + 1].text == "in") {
        pos_ += 2;
        auto in = Binary("in", std::move(e), ParseConcat());
        e = Make(Expr::Kind::kUnary);
        e->text = "not";
        e->args.push_back(std::move(in));
      } else if (AcceptName("is")) {
        auto t = Make(Expr::Kind::kTest);
        t->negate = AcceptName("not");
        t->text = ExpectName();
        t->args.push_back(std::move(e));
        if (PeekOp("(")) {
          ++pos_;
          ParseArgs(t.get());
        } else if (!AtEnd() && tokens_[pos_].kind != Token::Kind::kOp && !PeekName("and") &&
                   !PeekName("or") && !PeekName("if") && !PeekName("else")) {
          t->args.push_back(ParsePrimary());
          t->names.push_back("");
        }
        e = std::move(t);
      } else {
        return e;
      }
    }
  }
  std::unique_ptr<Expr> ParseConcat() {
    auto e = ParseAdd();
    while (AcceptOp("~")) e = Binary("~", std::move(e), ParseAdd());
    return e;
  }
  std::unique_ptr<Expr> ParseAdd() {
    auto e = ParseMul();
    while (true) {
      if (AcceptOp("+")) {
        e = Binary("+", std::move(e), ParseMul());
      } else if (AcceptOp("-")) {
        e = Binary("-", std::move(e), ParseMul());
      } else {
        return e;
      }
    }
  }
  std::unique_ptr<Expr> ParseMul() {
    auto e = ParsePow();
    while (true) {
      const char* op = nullptr;
      for (const char* o : {"//", "*", "/", "%"}) {
        if (PeekOp(o)) op = o;
        if (op) break;
      }
      if (!op) return e;
      ++pos_;
      e = Binary(op, std::move(e), ParsePow());
    }
  }
  // As in Jinja, ** binds looser than a unary minus: -2 ** 2 is 4.
  std::unique_ptr<Expr> ParsePow() {
    auto e = ParseUnary();
    while (AcceptOp("**")) e = Binary("**", std::move(e), ParseUnary());
    return e;
  }
  std::unique_ptr<Expr> ParseUnary() {
    if (AcceptOp("-")) {
      auto e = Make(Expr::Kind::kUnary);
      e->text = "-";
      e->args.push_back(ParseUnary());
      return e;
    }
    if (AcceptOp("+")) return ParseUnary();
    return ParsePostfix(ParsePrimary());
  }
  // Call arguments after '(' up to ')'.
  void ParseArgs(Expr* call) {
    while (!AcceptOp(")")) {
      if (AtEnd()) Fail("expected ')'");
      if (AcceptOp("**")) {
        call->names.push_back("**");  // f(**kwargs): a dict's items as keywords
      } else if (AcceptOp("*")) {
        call->names.push_back("*");  // f(*args): a list's items as positionals
      } else if (tokens_[pos_].kind == Token::Kind::kName && pos_ + 1 < tokens_.size() &&
                 tokens_[pos_ + 1].kind == Token::Kind::kOp && tokens_[pos_ + 1].text == "=") {
        call->names.push_back(tokens_[pos_].text);
        pos_ += 2;
      } else {
        call->names.push_back("");
      }
      call->args.push_back(Parse());
      if (!PeekOp(")")) ExpectOp(",");
    }
  }
  std::unique_ptr<Expr> ParsePostfix(std::unique_ptr<Expr> e) {
    while (true) {
      if (AcceptOp(".")) {
        auto a = Make(Expr::Kind::kAttr);
        a->text = ExpectName();
        a->args.push_back(std::move(e));
        e = std::move(a);
      } else if (AcceptOp("[")) {
        // x[i], or a slice x[start:stop:step] with any part left out.
        std::unique_ptr<Expr> first;
        if (!PeekOp(":")) first = Parse();
        if (AcceptOp("]")) {
          auto a = Make(Expr::Kind::kIndex);
          a->args.push_back(std::move(e));
          a->args.push_back(std::move(first));
          e = std::move(a);
          continue;
        }
        auto a = Make(Expr::Kind::kSlice);
        a->args.push_back(std::move(e));
        a->args.push_back(std::move(first));
        for (int part = 0; part < 2; ++part) {
          if (!AcceptOp(":")) {
            a->args.push_back(nullptr);
            continue;
          }
          a->args.push_back(PeekOp(":") || PeekOp("]") ? nullptr : Parse());
        }
        ExpectOp("]");
        e = std::move(a);
      } else if (AcceptOp("(")) {
        auto c = Make(Expr::Kind::kCall);
        c->args.push_back(std::move(e));
        ParseArgs(c.get());
        e = std::move(c);
      } else if (AcceptOp("|")) {
        auto f = Make(Expr::Kind::kFilter);
        f->text = ExpectName();
        f->args.push_back(std::move(e));
        if (AcceptOp("(")) ParseArgs(f.get());
        e = std::move(f);
      } else {
        return e;
      }
    }
  }
  std::unique_ptr<Expr> ParsePrimary() {
    const Token& t = tokens_[pos_];
    auto lit = [&](Value v) {
      auto e = Make(Expr::Kind::kLiteral);
      e->literal = std::move(v);
      ++pos_;
      return e;
    };
    switch (t.kind) {
      case Token::Kind::kString: {
        std::string s = t.text;
        ++pos_;
        // Adjacent string literals concatenate, as in Python.
        while (tokens_[pos_].kind == Token::Kind::kString) s += tokens_[pos_++].text;
        auto e = Make(Expr::Kind::kLiteral);
        e->literal = Value(std::move(s));
        return e;
      }
      case Token::Kind::kInt:
        return lit(Value(static_cast<int64_t>(std::stoll(t.text))));
      case Token::Kind::kFloat:
        return lit(Value(std::stod(t.text)));
      case Token::Kind::kName: {
        if (t.text == "true" || t.text == "True") return lit(Value(true));
        if (t.text == "false" || t.text == "False") return lit(Value(false));
        if (t.text == "none" || t.text == "None") return lit(Value());
        auto e = Make(Expr::Kind::kName);
        e->text = t.text;
        ++pos_;
        return e;
      }
      case Token::Kind::kOp:
        if (AcceptOp("(")) {
          if (AcceptOp(")")) return Make(Expr::Kind::kList);
          auto e = ParseTuple();
          ExpectOp(")");
          return e;
        }
        if (AcceptOp("[")) {
          auto e = Make(Expr::Kind::kList);
          while (!AcceptOp("]")) {
            e->args.push_back(Parse());
            if (!PeekOp("]")) ExpectOp(",");
          }
          return e;
        }
        if (AcceptOp("{")) {
          auto e = Make(Expr::Kind::kDict);
          while (!AcceptOp("}")) {
            e->args.push_back(Parse());
            ExpectOp(":");
            e->args.push_back(Parse());
            if (!PeekOp("}")) ExpectOp(",");
          }
          return e;
        }
        break;
      case Token::Kind::kEnd:
        break;
    }
    Fail("expected an expression");
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int line_;
};

// Builds the statement tree from the segments.
class StatementParser {
 public:
  explicit StatementParser(std::vector<Segment> segments) : segs_(std::move(segments)) {}

  NodeList ParseAll() {
    std::string end;
    NodeList nodes = ParseBody({}, &end);
    return nodes;
  }

 private:
  static std::string TagOf(const std::string& stmt) {
    size_t i = 0;
    while (i < stmt.size() && IsSpace(stmt[i])) ++i;
    size_t j = i;
    while (j < stmt.size() && (std::isalnum(static_cast<unsigned char>(stmt[j])) || stmt[j] == '_'))
      ++j;
    return stmt.substr(i, j - i);
  }
  static std::string RestOf(const std::string& stmt) {
    std::string tag = TagOf(stmt);
    size_t at = stmt.find(tag);
    return stmt.substr(at + tag.size());
  }

  // Parses nodes until one of `terminators` (a statement tag) and stores it in `*ended`
  // (the terminator segment index stays at pos_-1).
  NodeList ParseBody(const std::set<std::string>& terminators, std::string* ended) {
    NodeList nodes;
    while (pos_ < segs_.size()) {
      const Segment& seg = segs_[pos_++];
      if (seg.kind == Segment::Kind::kText) {
        auto n = MakeNode(Node::Kind::kText, seg.line);
        n->text = seg.text;
        nodes.push_back(std::move(n));
        continue;
      }
      if (seg.kind == Segment::Kind::kOutput) {
        auto n = MakeNode(Node::Kind::kOutput, seg.line);
        ExprParser p(seg.text, seg.line);
        n->expr = p.Parse();
        p.ExpectEnd();
        nodes.push_back(std::move(n));
        continue;
      }
      std::string tag = TagOf(seg.text);
      if (terminators.count(tag)) {
        *ended = tag;
        return nodes;
      }
      nodes.push_back(ParseStatement(tag, seg));
    }
    if (!terminators.empty()) {
      std::string expected = *terminators.rbegin();
      for (const auto& t : terminators) {
        if (t.rfind("end", 0) == 0) expected = t;
      }
      throw TemplateError(open_line_,
                          fmt::format("block is never closed (expected {{% {} %}})", expected));
    }
    return nodes;
  }

  std::unique_ptr<Node> MakeNode(Node::Kind kind, int line) {
    auto n = std::make_unique<Node>();
    n->kind = kind;
    n->line = line;
    return n;
  }

  std::unique_ptr<Node> ParseStatement(const std::string& tag, const Segment& seg) {
    ExprParser p(RestOf(seg.text), seg.line);
    int saved_open = open_line_;
    open_line_ = seg.line;
    std::unique_ptr<Node> n;
    if (tag == "if") {
      n = MakeNode(Node::Kind::kIf, seg.line);
      auto cond = p.Parse();
      p.ExpectEnd();
      while (true) {
        std::string ended;
        NodeList body = ParseBody({"elif", "else", "endif"}, &ended);
        n->branches.emplace_back(std::move(cond), std::move(body));
        if (ended == "endif") break;
        const Segment& s = segs_[pos_ - 1];
        ExprParser q(RestOf(s.text), s.line);
        if (ended == "elif") {
          cond = q.Parse();
          q.ExpectEnd();
        } else {
          q.ExpectEnd();
          NodeList else_body = ParseBody({"endif"}, &ended);
          n->branches.emplace_back(nullptr, std::move(else_body));
          break;
        }
      }
    } else if (tag == "for") {
      n = MakeNode(Node::Kind::kFor, seg.line);
      n->targets.push_back(p.ExpectName());
      while (p.AcceptOp(",")) n->targets.push_back(p.ExpectName());
      if (!p.AcceptName("in")) p.Fail("expected 'in'");
      n->expr = p.Parse();
      if (p.PeekName("recursive")) p.Fail("unsupported: recursive loops");
      p.ExpectEnd();
      std::string ended;
      n->body = ParseBody({"else", "endfor"}, &ended);
      if (ended == "else") n->else_body = ParseBody({"endfor"}, &ended);
    } else if (tag == "set") {
      std::vector<std::string> targets{p.ExpectName()};
      if (p.AcceptOp(".")) {
        n = MakeNode(Node::Kind::kSetAttribute, seg.line);
        n->text = p.ExpectName();
        if (p.AcceptOp("=")) {
          n->expr = p.ParseTuple();
          p.ExpectEnd();
        } else {  // {% set ns.x %}body{% endset %}
          p.ExpectEnd();
          std::string ended;
          n->body = ParseBody({"endset"}, &ended);
        }
        n->targets = std::move(targets);
        open_line_ = saved_open;
        return n;
      }
      while (p.AcceptOp(",")) targets.push_back(p.ExpectName());
      if (p.AcceptOp("=")) {
        n = MakeNode(Node::Kind::kSet, seg.line);
        n->expr = p.ParseTuple();
        p.ExpectEnd();
      } else {
        p.ExpectEnd();
        if (targets.size() != 1) p.Fail("a block set takes one name");
        n = MakeNode(Node::Kind::kSetBlock, seg.line);
        std::string ended;
        n->body = ParseBody({"endset"}, &ended);
      }
      n->targets = std::move(targets);
    } else if (tag == "macro" || tag == "test") {
      n = MakeNode(Node::Kind::kMacro, seg.line);
      n->text = (tag == "test" ? "test_" : "") + p.ExpectName();
      p.ExpectOp("(");
      while (!p.AcceptOp(")")) {
        n->params.push_back(p.ExpectName());
        n->defaults.push_back(p.AcceptOp("=") ? p.Parse() : nullptr);
        if (!p.PeekOp(")")) p.ExpectOp(",");
      }
      p.ExpectEnd();
      std::string ended;
      n->body = ParseBody({tag == "test" ? "endtest" : "endmacro"}, &ended);
    } else if (tag == "materialization") {
      // dbt's {% materialization name, adapter='postgres' %} / {% materialization name,
      // default %}: a macro named materialization_<name>_<adapter> without parameters.
      n = MakeNode(Node::Kind::kMacro, seg.line);
      std::string name = p.ExpectName(), adapter;
      while (p.AcceptOp(",")) {
        std::string key = p.ExpectName();
        if (key == "default") {
          adapter = "default";
        } else if (p.AcceptOp("=")) {
          auto value = p.Parse();
          if (key == "adapter") {
            if (value->kind != Expr::Kind::kLiteral || !value->literal.is_string())
              p.Fail("a materialization's adapter is a string");
            adapter = value->literal.as_string();
          } else if (key != "supported_languages") {
            p.Fail(fmt::format("unknown materialization argument '{}'", key));
          }
        } else {
          p.Fail(fmt::format("unknown materialization argument '{}'", key));
        }
      }
      p.ExpectEnd();
      if (adapter.empty()) p.Fail("a materialization needs adapter='<type>' or default");
      n->text = fmt::format("materialization_{}_{}", name, adapter);
      std::string ended;
      n->body = ParseBody({"endmaterialization"}, &ended);
    } else if (tag == "snapshot") {
      n = MakeNode(Node::Kind::kSnapshot, seg.line);
      n->text = p.ExpectName();
      p.ExpectEnd();
      std::string ended;
      n->body = ParseBody({"endsnapshot"}, &ended);
    } else if (tag == "call") {
      n = MakeNode(Node::Kind::kCallBlock, seg.line);
      if (p.PeekOp("(")) p.Fail("unsupported: arguments to caller() ({% call(args) ... %})");
      n->expr = p.Parse();
      if (n->expr->kind != Expr::Kind::kCall) p.Fail("{% call %} needs a macro call");
      p.ExpectEnd();
      std::string ended;
      n->body = ParseBody({"endcall"}, &ended);
    } else if (tag == "do") {
      n = MakeNode(Node::Kind::kDo, seg.line);
      n->expr = p.Parse();
      p.ExpectEnd();
    } else if (tag.empty()) {
      throw TemplateError(seg.line, "empty statement tag");
    } else if (tag == "endif" || tag == "endfor" || tag == "endmacro" || tag == "endset" ||
               tag == "else" || tag == "elif" || tag == "endtest" || tag == "endcall" ||
               tag == "endsnapshot" || tag == "endmaterialization") {
      throw TemplateError(seg.line, fmt::format("unexpected {{% {} %}}", tag));
    } else {
      throw TemplateError(seg.line, fmt::format("unsupported construct {{% {} %}}", tag));
    }
    open_line_ = saved_open;
    return n;
  }

  std::vector<Segment> segs_;
  size_t pos_ = 0;
  int open_line_ = 1;
};

}  // namespace

Template::~Template() = default;

Result<std::shared_ptr<const Template>> Template::Parse(const std::string& source,
                                                        const std::string& name) {
  try {
    auto t = std::shared_ptr<Template>(new Template());
    t->name_ = name;
    t->nodes_ = StatementParser(Split(source)).ParseAll();
    return std::shared_ptr<const Template>(std::move(t));
  } catch (const TemplateError& e) {
    return Status::Error(fmt::format("{}:{}: {}", name, e.line(), e.what()));
  }
}

}  // namespace pdv::transform::jinja
