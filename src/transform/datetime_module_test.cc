#include "transform/datetime_module.h"

#include <gtest/gtest.h>

#include "transform/jinja.h"

namespace pdv::transform {
namespace {

std::string Render(const std::string& src) {
  auto t = jinja::Template::Parse(src, "t.sql");
  if (!t.ok()) return "PARSE ERROR " + t.message();
  jinja::ValueDict modules;
  modules.Set("datetime", DatetimeModule());
  modules.Set("pytz", PytzModule());
  jinja::ValueDict globals;
  globals.Set("modules", jinja::Value(std::move(modules)));
  auto r = jinja::Environment().Render(**t, globals);
  return r.ok() ? *r : "ERROR " + r.message();
}

TEST(DatetimeModule, DatesDatetimesAndTheirText) {
  EXPECT_EQ(Render("{{ modules.datetime.date(1997, 9, 29) }}"), "1997-09-29");
  EXPECT_EQ(Render("{{ modules.datetime.datetime(1997, 9, 29, 6, 14) }}"), "1997-09-29 06:14:00");
  EXPECT_EQ(Render("{% set d = modules.datetime.datetime(2026, 3, 1, 7, 5, 9, 120) %}"
                   "{{ d.isoformat() }} {{ d.strftime('%Y/%m/%d %H %A') }} {{ d.date() }}"),
            "2026-03-01T07:05:09.000120 2026/03/01 07 Sunday 2026-03-01");
  EXPECT_EQ(
      Render("{{ modules.datetime.datetime.strptime('2026-09-01', '%Y-%m-%d').timestamp() }}"),
      "1788220800.0");
  EXPECT_EQ(Render("{{ modules.datetime.datetime.fromisoformat('2026-08-15T12:00:00+00:00')"
                   ".timestamp() }}"),
            "1786795200.0");
  EXPECT_EQ(Render("{{ modules.datetime.datetime.fromisoformat('2026-13-45') }}"),
            "ERROR t.sql:1: fromisoformat: invalid isoformat string: '2026-13-45'");
}

// pytz's localize() reads the zone's rules: daylight time in August, standard in January.
TEST(DatetimeModule, PytzLocalizesWithTheZonesOffsetAtThatTime) {
  EXPECT_EQ(Render("{% set tz = modules.pytz.timezone('America/Los_Angeles') %}"
                   "{{ tz.localize(modules.datetime.datetime(2026, 8, 1, 12)) }} "
                   "{{ tz.localize(modules.datetime.datetime(2026, 1, 1, 12)) }}"),
            "2026-08-01 12:00:00-07:00 2026-01-01 12:00:00-08:00");
  EXPECT_EQ(Render("{{ modules.pytz.timezone('Asia/Tokyo').localize("
                   "modules.datetime.datetime(2026, 9, 1)).timestamp() }}"),
            "1788188400.0");
  EXPECT_EQ(Render("{{ modules.pytz.timezone('Mars/Olympus') }}"),
            "ERROR t.sql:1: pytz: unknown time zone 'Mars/Olympus'");
  EXPECT_EQ(Render("{{ modules.pytz.timezone('../../etc/passwd') }}"),
            "ERROR t.sql:1: pytz: unknown time zone '../../etc/passwd'");
}

}  // namespace
}  // namespace pdv::transform
