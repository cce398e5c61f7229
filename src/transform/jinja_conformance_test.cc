// Jinja conformance: each template renders as Jinja2 (3.1, with dbt's do and loopcontrols
// extensions) renders it. The expected outputs were produced by Jinja2 itself.

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "transform/jinja.h"

namespace pdv::transform::jinja {
namespace {

const std::vector<std::pair<std::string, std::string>> kCases = {
    {"{{ [3,'B','a','c'] | map('string') | sort | join(',') }}|{{ ['b','A','a'] | unique | list "
     "}}|{{ ['b','A','C'] | max }}",
     "3,a,B,c|['b', 'A']|C"},
    {"{{ 2.5 | round }} {{ 3 | round }} {{ 0 | round(0, 'floor') }} {{ 2.675 | round(2) }} {{ "
     "1.5|round(method='ceil') }} {{ -2.5|round }}",
     "2.0 3 0.0 2.67 2.0 -2.0"},
    {"{{ {'b': 1, 'A': 2, 'a': 0} | dictsort }}|{{ {'b': 1, 'a': 2} | dictsort(by='value') }}|{{ "
     "{'b': 1, 'a': 2} | dictsort(reverse=true) }}",
     "[('A', 2), ('a', 0), ('b', 1)]|[('b', 1), ('a', 2)]|[('b', 1), ('a', 2)]"},
    {"{{ 'xxhixx' | trim('x') }}|{{ \"  a  \" | trim }}|", "hi|a|"},
    {"{{ {'b': '<a>', 'a': [1.0, none, true]} | tojson }}|{{ 'é' | tojson }}",
     "{\"a\": [1.0, null, true], \"b\": \"\\u003ca\\u003e\"}|\"\\u00e9\""},
    {"{{ 'hello world foo bar' | truncate(9) }}|{{ 'hello world foo bar' | truncate(9, true) }}|{{ "
     "'hello world' | truncate(9, leeway=0) }}|{{ 'hello world foo' | truncate(12, false, '..', 0) "
     "}}",
     "hello...|hello ...|hello...|hello.."},
    {"{{ 'a b, c-d' | wordcount }}|{{ 'ab' | center(7) }}|{{ '<a href=\"x\">&</a>' | e }}|{{ "
     "'%s-%d' | format('a', 3) }}|{{ '%(x)s' | format(x=1) }}",
     "4|   ab  |&lt;a href=&#34;x&#34;&gt;&amp;&lt;/a&gt;|a-3|1"},
    {"{% for row in [1,2,3,4,5] | batch(2, 0) %}{{ row }}{% endfor %}|{% for c in [1,2,3,4,5] | "
     "slice(3) %}{{ c }}{% endfor %}|{% for c in [1,2,3,4,5] | slice(3, 'x') %}{{ c }}{% endfor %}",
     "[1, 2][3, 4][5, 0]|[1, 2][3, 4][5]|[1, 2][3, 4][5, 'x']"},
    {"{% for g in [{'k':'a','v':1},{'k':'B','v':2},{'k':'b','v':3}] | groupby('k') %}{{ g.grouper "
     "}}:{{ g.list|map(attribute='v')|list }};{% endfor %}{% for k, items in "
     "[{'k':1},{'k':2},{'k':1}]|groupby('k') %}{{k}}{{items|length}}{% endfor %}",
     "a:[1];B:[2, 3];1221"},
    {"{{ [{'a':3},{'a':1}] | sort(attribute='a') }}|{{ [{'a':3},{'a':1}] | max(attribute='a') "
     "}}|{{ [{'a':{'b':2}},{'a':{'b':1}}] | map(attribute='a.b') | list }}|{{ [[1,2],[0,5]] | "
     "sort(attribute='1', reverse=true) }}",
     "[{'a': 1}, {'a': 3}]|{'a': 3}|[2, 1]|[[0, 5], [1, 2]]"},
    {"{{ 6 is divisibleby 3 }}{{ 3 is gt 2 }}{{ 3 is ge 3 }}{{ 1 is lt 2 }}{{ 1 is le 0 }}{{ 1 is "
     "ne 1 }}{{ 'AB' is upper }}{{ 'ab' is lower }}{{ none is sameas none }}{{ 2 is in [1,2] }}{{ "
     "true is number }}{{ true is integer }}{{ 'upper' is filter }}{{ 'gt' is test }}{{ 1 is eq 1 "
     "}}",
     "TrueTrueTrueTrueFalseFalseTrueTrueTrueTrueTrueFalseTrueTrueTrue"},
    {"{{ [1,2,3,4] | select('gt', 2) | list }}{{ [1,2,3,4] | reject('divisibleby', 2) | list }}{{ "
     "['a','B'] | select('upper') | list }}",
     "[3, 4][1, 3]['B']"},
    {"{{ 'HELLO wORLD' | capitalize }}|{{ \"a\\n\\nb\\nc\" | indent(2) }}|{{ \"a\\nb\" | indent(2, "
     "true) }}|{{ \"a\\n\\nb\" | indent(2, blank=true) }}|{{ 'a-b c(d' | title }}",
     "Hello world|a\n\n  b\n  c|  a\n  b|a\n  \n  b|A-B C(D"},
    {"{{ 'x' | attr('upper') is callable }}|{{ {'a':1} | attr('a') }}|{{ 'x'.nope }}|{{ 3 | "
     "filesizeformat }}{{ 3000 | filesizeformat }}{{ 3000000|filesizeformat(true) }}|{{ 'a b/c&d' "
     "| urlencode }}|{{ {'a':1,'b':'x y'}|urlencode }}|{{ '<p>a  <b>b</b></p>' | striptags }}",
     "True|||3 Bytes3.0 kB2.9 MiB|a%20b/c%26d|a=1&b=x+y|a b"},
    {"{{ 3.0 | int }} {{ '3.7' | int }} {{ 'x' | int(5) }} {{ '0x1A' | int(0, 16) }} {{ '1e3' | "
     "float }} {{ 'ab' | float }} {{ '12' | int(base=8) }}",
     "3 3 5 26 1000.0 0.0 10"},
    {"{{ ['a', 'b'] | first }}{{ 'abc' | last }}{{ [1,2] | sum }}{{ [{'x':1},{'x':2}] | "
     "sum(attribute='x', start=10) }}{{ [1, 2, 3] | reverse | list }}{{ 'abc'|list }}{{ "
     "{'a':1}|items|list }}{{ [1,'a',none]|join('-') }}{{ [{'n':'a'},{'n':'b'}]|join(', ', "
     "attribute='n') }}",
     "ac313[3, 2, 1]['a', 'b', 'c'][('a', 1)]1-a-Nonea, b"},
    {"{{ \"%5.1f|%-4d|%x|%r|%s|%05.1f|%+d\" % (3.14159, 7, 255, 'a', None, 2.5, 3) }}|{{ \"%s\" % "
     "'x' }}|{{ \"%s\" % ['a','b'] }}|{{ \"{}-{}|{x[0]}|{:>5}\".format(1,2,3,x=[9]) }}|{{ "
     "\"{:,}\".format(1234567) }}|{{ \"{:.2f}\".format(1) }}|{{ \"{0}{0}\".format('z') }}|{{ "
     "\"{:08.3f}\".format(-3.14159) }}|{{ \"{:%}\".format(0.25) }}|{{ (1,) }}{{ (1,2) }}{{ () }}",
     "  3.1|7   |ff|'a'|None|002.5|+3|x|['a', 'b']|1-2|9|    "
     "3|1,234,567|1.00|zz|-003.142|25.000000%|(1,)(1, 2)()"},
    {"{{ 'a,b,,c'.rsplit(',', 1) }}{{ 'x'.zfill(3) }}{{ 'abcb'.find('b') }}{{ 'abcb'.count('b') "
     "}}{{ 'a b  c'.split() }}{{ 'a b c'.split(' ', 1) }}{{ '  a b c '.rsplit(None, 1) }}{{ "
     "'ab'.center(7, '*') }}{{ 'abc'.index('c') }}{{ 'a-b'.partition('-') }}",
     "['a,b,', 'c']00x12['a', 'b', 'c']['a', 'b c']['  a b', 'c']***ab**2('a', '-', 'b')"},
    {"{% set l = [3, 1, 2] %}{{ l.pop() }}{{ l }}{% do l.insert(0, 9) %}{{ l }}{% do l.sort() %}{{ "
     "l }}{{ l.index(9) }}{% do l.sort(reverse=true) %}{{ l }}{{ l.count(1) }}{% set d = {'a': 1} "
     "%}{{ d.pop('a') }}{{ d }}{{ d.setdefault('b', 2) }}{{ d }}{{ d.pop('z', 'none') }}",
     "2[3, 1][9, 3, 1][1, 3, 9]2[9, 3, 1]11{}2{'b': 2}none"},
    {"{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x > 4 %}{% break %}{% "
     "endif %}{{ x }}{% endfor %}",
     "0134"},
    {"{% for x in range(10) if x is odd %}{{ loop.index }}:{{ x }}/{{ loop.length }}{{ "
     "loop.cycle('a','b') }} {% else %}none{% endfor %}|{% for x in [] if x %}{% else %}empty{% "
     "endfor %}|{% for x in [1, 2, 3] if x > 5 %}{% else %}empty2{% endfor %}",
     "1:1/5a 2:3/5b 3:5/5a 4:7/5b 5:9/5a |empty|empty2"},
    {"{% for x in [1,1,2,3] %}{{ loop.previtem }}-{{ loop.nextitem }}-{{ loop.changed(x) }}-{{ "
     "loop.revindex }}-{{ loop.depth }};{% endfor %}",
     "-1-True-4-1;1-2-False-3-1;1-3-True-2-1;2--True-1-1;"},
    {"{%- set tree = [{'n': 'a', 'c': [{'n': 'b', 'c': []}, {'n': 'c', 'c': [{'n': 'd', 'c': "
     "[]}]}]}] -%}\n{% for item in tree recursive %}{{ loop.depth }}{{ item.n }}{% if item.c %}({{ "
     "loop(item.c) }}){% endif %}{% endfor %}",
     "1a(2b2c(3d))"},
    {"{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1) | int }}{% endif %}{% "
     "endmacro %}{{ fact(5) }}",
     "120"},
    {"{% macro list_items(items) %}<{% for i in items %}{{ caller(i, loop.index) }}{% endfor %}>{% "
     "endmacro %}{% call(item, n) list_items(['x', 'y']) %}{{ n }}={{ item }};{% endcall %}",
     "<1=x;2=y;>"},
    {"{% filter upper %}hello {{ 'x' }}{% endfilter %}|{% filter replace('a', 'b') | upper %}aaa{% "
     "endfilter %}",
     "HELLO X|BBB"},
    {"{% set x = 1 %}{% with x = 2, y = x %}{{ x }}{{ y }}{% endwith %}{{ x }}{% with %}{% set x = "
     "5 %}{{ x }}{% endwith %}{{ x }}",
     "21151"},
    {"{% set x = 1 %}{% macro m() %}{{ x }}{% endmacro %}{{ m() }}", "1"},
    {"{% for a, b in [(1, 2), (3, 4)] %}{{ a }}{{ b }}{% endfor %}{% for k, v in {'x': 1}.items() "
     "%}{{ k }}{{ v }}{% endfor %}",
     "1234x1"},
    {"{% set j = joiner('|') %}{% for x in 'abc' %}{{ j() }}{{ x }}{% endfor %} {% set c = "
     "cycler('x', 'y') %}{{ c.next() }}{{ c.next() }}{{ c.next() }}",
     "a|b|c xyx"},
};

TEST(JinjaConformance, RendersAsJinja2) {
  for (const auto& [source, expected] : kCases) {
    auto t = Template::Parse(source, "c.sql");
    ASSERT_TRUE(t.ok()) << source << "\n" << t.message();
    Environment env;
    auto r = env.Render(**t, {});
    ASSERT_TRUE(r.ok()) << source << "\n" << r.message();
    EXPECT_EQ(*r, expected) << source;
  }
}

TEST(JinjaConformance, TemplateErrorsNameFileAndLine) {
  struct Case {
    std::string source, error;
  };
  const std::vector<Case> cases = {
      {"a\n{% break %}", "c.sql:2: {% break %} outside a for loop"},
      {"{% macro f(n) %}{{ f(n) }}{% endmacro %}\n{{ f(1) }}", "maximum recursion depth"},
      {"\n\n{{ 'a' | nosuch }}", "c.sql:3: unsupported filter 'nosuch'"},
      {"{{ 99999999999999999999 }}", "c.sql:1: integer literal out of range"},
      {"{{ '%d' % 'x' }}", "c.sql:1: format: %d format: a real number is required, not str"},
      {"{{ 1 < 'a' }}", "c.sql:1: '<' not supported between instances of 'int' and 'str'"},
      {"{% for x in 3 %}{% endfor %}", "c.sql:1: 'int' object is not iterable"},
      {"{% filter upper %}x", "block is never closed (expected {% endfilter %})"},
  };
  for (const auto& c : cases) {
    Environment env;
    auto t = Template::Parse(c.source, "c.sql");
    std::string message = t.ok() ? env.Render(**t, {}).message() : t.message();
    EXPECT_NE(message.find(c.error), std::string::npos) << c.source << "\n" << message;
  }
}

}  // namespace
}  // namespace pdv::transform::jinja
