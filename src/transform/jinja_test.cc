#include "transform/jinja.h"

#include <gtest/gtest.h>

namespace pdv::transform::jinja {
namespace {

std::string Render(const std::string& src, ValueDict globals = {}, Environment* env = nullptr) {
  auto t = Template::Parse(src, "t.sql");
  if (!t.ok()) return "PARSE ERROR " + t.message();
  Environment local;
  auto r = (env ? env : &local)->Render(**t, globals);
  return r.ok() ? *r : "ERROR " + r.message();
}

TEST(Jinja, TextAndExpressions) {
  EXPECT_EQ(Render("select 1"), "select 1");
  EXPECT_EQ(Render("{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ 7 % 3 }} {{ 1 / 2 }} {{ -3 // 2 }}"),
            "7 3 1 0.5 -2");
  EXPECT_EQ(Render("{{ 'a' ~ 1 ~ none }}"), "a1None");
  EXPECT_EQ(Render("{{ [1, 'x'] }} {{ {'a': true} }}"), "[1, 'x'] {'a': True}");
  EXPECT_EQ(Render("{{ 'b' in ['a', 'b'] }} {{ 'z' not in 'xyz' }} {{ 1 < 2 and 2 >= 2 }}"),
            "True False True");
  EXPECT_EQ(Render("{{ 'yes' if x else 'no' }}", {{{"x", Value(0)}}}), "no");
  EXPECT_EQ(Render("{{ d['k'] }}{{ d.k }}{{ d.get('z', 9) }}",
                   {{{"d", Value(ValueDict{{{"k", Value("v")}}})}}}),
            "vv9");
  EXPECT_EQ(Render("{{ 'a' 'b' }}{{ (1, 2) }}"), "ab(1, 2)");
}

TEST(Jinja, StatementsAndWhitespaceControl) {
  EXPECT_EQ(Render("{% set x = 3 %}{% if x > 2 %}big{% elif x > 1 %}mid{% else %}small{% endif %}"),
            "big");
  EXPECT_EQ(
      Render("{% for c in ['a','b','c'] %}{{ c }}{% if not loop.last %}, {% endif %}{% endfor %}"),
      "a, b, c");
  EXPECT_EQ(
      Render(
          "{% for k, v in {'a': 1, 'b': 2}.items() %}{{ loop.index }}{{ k }}={{ v }};{% endfor %}"),
      "1a=1;2b=2;");
  EXPECT_EQ(Render("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(Render("a  {%- set y = 1 -%}  \n b{# note #}c {#- x -#} d"), "abcd");
  EXPECT_EQ(Render("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}"), "1");
  EXPECT_EQ(Render("{% set q %}select {{ 1 }}{% endset %}[{{ q }}]"), "[select 1]");
  EXPECT_EQ(Render("{% raw %}{{ kept }}{% endraw %}"), "{{ kept }}");
  EXPECT_EQ(Render("{% set l = [] %}{% do l.append(1) %}{{ l | length }}"), "1");
}

TEST(Jinja, FiltersAndTests) {
  EXPECT_EQ(
      Render("{{ ' Ab ' | trim | lower }}|{{ 'ab' | upper }}|{{ ['b','a'] | sort | join(',') }}"),
      "ab|AB|a,b");
  EXPECT_EQ(Render("{{ missing | default('d') }} {{ '' | default('e', true) }} {{ [1,2,2] | unique "
                   "| list }}"),
            "d e [1, 2]");
  EXPECT_EQ(Render("{{ '12' | int + 1 }} {{ 'a-b' | replace('-', '_') }} {{ [3,4] | first }}{{ "
                   "[3,4] | last }}"),
            "13 a_b 34");
  EXPECT_EQ(Render("{{ x is defined }} {{ none is none }} {{ 'a' is string }} {{ 4 is even }} {{ y "
                   "is not defined }}",
                   {{{"x", Value(1)}}}),
            "True True True True True");
  EXPECT_EQ(Render("{{ {'a': [1]} | tojson }}"), "{\"a\": [1]}");
  EXPECT_EQ(Render("{{ [{'n': 'a'}, {'n': 'b'}] | map(attribute='n') | join('+') }}"), "a+b");
}

TEST(Jinja, Macros) {
  Environment env;
  auto lib = Template::Parse(
      "{% macro cents(col, scale=100) -%}({{ col }} * {{ scale }})::bigint{%- endmacro %}"
      "{% macro pick(x) %}{{ return(x * 2) }}{% endmacro %}"
      "{% test positive(model, column_name) %}select * from {{ model }} where {{ column_name }} <= "
      "0{% endtest %}",
      "macros/m.sql");
  ASSERT_TRUE(lib.ok()) << lib.message();
  auto names = env.AddMacros(*lib);
  EXPECT_EQ(names, (std::vector<std::string>{"cents", "pick", "test_positive"}));
  EXPECT_EQ(Render("{{ cents('v') }} {{ cents('v', scale=10) }} {{ pick(4) + 1 }}", {}, &env),
            "(v * 100)::bigint (v * 10)::bigint 9");
  EXPECT_EQ(Render("{% macro twice(s) %}{{ s }}{{ s }}{% endmacro %}{{ twice('ab') }}"), "abab");
  auto called =
      env.CallMacro("test_positive",
                    Arguments{.named = {{"model", Value("t")}, {"column_name", Value("c")}}}, {});
  ASSERT_TRUE(called.ok()) << called.message();
  EXPECT_EQ(called->Str(), "select * from t where c <= 0");
}

TEST(Jinja, CallBlocksAndNamespaceAttributes) {
  // The body is the callee's caller(), and sees the scope where the block stands.
  EXPECT_EQ(Render("{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}"
                   "{% set who = 'ana' %}{% call wrap('b') %}hi {{ who }}{% endcall %}"),
            "<b>hi ana</b>");
  EXPECT_EQ(Render("{% set ns = namespace(n=0) %}{% for i in [1, 2, 3] %}{% set ns.n = ns.n + i "
                   "%}{% endfor %}{{ ns.n }}"),
            "6");
  EXPECT_EQ(Render("{% set s = 'x' %}{% set s.y = 1 %}"),
            "ERROR t.sql:1: cannot set attribute 'y' of str");
  EXPECT_EQ(Render("{% call nothing() %}x{% endcall %}"),
            "ERROR t.sql:1: {% call %} needs a macro, not 'nothing' (undefined)");
}

// dbt's namespaces: a package's macros by name (pkg.macro), unqualified names by the search
// order: the calling macro's package, the node's, the root project, the global project.
TEST(Jinja, PackageNamespacesAndSearchOrder) {
  Environment env("root");
  auto add = [&](const std::string& src, const std::string& package) {
    auto t = Template::Parse(src, package + ".sql");
    ASSERT_TRUE(t.ok()) << t.message();
    env.AddMacros(*t, package);
  };
  add("{% macro who() %}dbt{% endmacro %}{% macro only_dbt() %}global{% endmacro %}", "dbt");
  add("{% macro who() %}root{% endmacro %}", "");
  add("{% macro who() %}pkg{% endmacro %}{% macro inner() %}{{ who() }}{% endmacro %}"
      "{% macro helper() %}{{ only_dbt() }}{% endmacro %}",
      "pkg");
  auto render = [&](const std::string& src, const std::string& package) {
    auto t = Template::Parse(src, "n.sql");
    auto r = env.Render(**t, {}, package);
    return r.ok() ? *r : "ERROR " + r.message();
  };
  EXPECT_EQ(render("{{ who() }} {{ pkg.who() }} {{ dbt.who() }} {{ root.who() }}", ""),
            "root pkg dbt root");
  // A package's macro calling unqualified finds its own package first.
  EXPECT_EQ(render("{{ pkg.inner() }} {{ pkg.helper() }}", ""), "pkg global");
  // A node of the package: its package first.
  EXPECT_EQ(render("{{ who() }}", "pkg"), "pkg");
  EXPECT_EQ(render("{{ pkg.missing() }}", ""),
            "ERROR n.sql:1: 'missing' is undefined (unknown function or macro)");
  EXPECT_TRUE(env.HasMacro("pkg", "inner"));
  EXPECT_FALSE(env.HasMacro("root", "inner"));
}

TEST(Jinja, ErrorsNameFileLineAndConstruct) {
  EXPECT_EQ(Render("a\n{% if x %}\nb"),
            "PARSE ERROR t.sql:2: block is never closed (expected {% endif %})");
  EXPECT_EQ(Render("a\n\n{% include 'x' %}"),
            "PARSE ERROR t.sql:3: unsupported construct {% include %}");
  EXPECT_EQ(Render("{{ x | frobnicate }}"), "ERROR t.sql:1: unsupported filter 'frobnicate'");
  EXPECT_EQ(Render("\n{{ nope() }}"),
            "ERROR t.sql:2: 'nope' is undefined (unknown function or macro)");
  EXPECT_EQ(Render("{{ 1 +  }}"), "PARSE ERROR t.sql:1: expected an expression at 'end of tag'");
  EXPECT_EQ(Render("{{ x.y }}"), "ERROR t.sql:1: 'x' is undefined");
  EXPECT_EQ(Render("{{ 'a' "), "PARSE ERROR t.sql:1: '{{' is never closed with '}}'");
  EXPECT_EQ(Render("{% endfor %}"), "PARSE ERROR t.sql:1: unexpected {% endfor %}");
}

}  // namespace
}  // namespace pdv::transform::jinja
