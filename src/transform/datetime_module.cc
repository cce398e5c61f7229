// modules.datetime and modules.pytz (datetime_module.h).

#include "transform/datetime_module.h"

#include <fmt/format.h>

#include <cstdint>
#include <ctime>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <vector>

namespace pdv::transform {
namespace {

using jinja::Arguments;
using jinja::Function;
using jinja::TemplateError;
using jinja::Value;
using jinja::ValueDict;

constexpr int64_t kMicrosPerDay = 86'400'000'000;

// Days since 1970-01-01 of a civil date, and back (H. Hinnant's algorithms).
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}
void CivilFromDays(int64_t z, int64_t& y, int64_t& m, int64_t& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = yoe + era * 400;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp + (mp < 10 ? 3 : -9);
  y += m <= 2;
}

// A zone's UTC offsets over time, from its TZif file.
struct Zone {
  std::string name;
  std::vector<int64_t> transitions;  // UTC seconds
  std::vector<uint8_t> type_of;      // per transition
  std::vector<int32_t> offsets;      // per type, seconds east of UTC
  std::string abbreviations;
  std::vector<uint8_t> abbr_index;

  int32_t OffsetAtUtc(int64_t utc_s) const {
    if (transitions.empty() || utc_s < transitions.front()) return offsets.empty() ? 0 : offsets[0];
    size_t i = static_cast<size_t>(std::upper_bound(transitions.begin(), transitions.end(), utc_s) -
                                   transitions.begin() - 1);
    return offsets[type_of[i]];
  }
  // pytz's localize(): the offset for a wall time (the earlier one in a fold, the one
  // after a gap's end in a gap, as is_dst=False does).
  int32_t OffsetForLocal(int64_t local_s) const {
    int32_t guess = OffsetAtUtc(local_s);
    int32_t again = OffsetAtUtc(local_s - guess);
    if (again == guess) return guess;
    int32_t third = OffsetAtUtc(local_s - again);
    return third == again ? again : std::min(guess, again);
  }
};

uint32_t Be32(const std::string& d, size_t at) {
  return (uint32_t(uint8_t(d[at])) << 24) | (uint32_t(uint8_t(d[at + 1])) << 16) |
         (uint32_t(uint8_t(d[at + 2])) << 8) | uint32_t(uint8_t(d[at + 3]));
}

std::optional<Zone> LoadZone(const std::string& name) {
  static const std::regex kName(R"([A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*)");
  if (!std::regex_match(name, kName)) return std::nullopt;
  std::ifstream in("/usr/share/zoneinfo/" + name, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string d = ss.str();
  if (d.size() < 44 || d.compare(0, 4, "TZif") != 0) return std::nullopt;
  auto counts = [&](size_t at) {
    std::vector<uint32_t> c;
    for (int i = 0; i < 6; ++i) c.push_back(Be32(d, at + 20 + 4 * i));
    return c;  // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
  };
  auto c = counts(0);
  size_t at = 44;
  size_t time_size = 4;
  if (d[4] >= '2') {  // skip the 32-bit part for the 64-bit one
    at += c[3] * 4 + c[3] + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0];
    if (d.size() < at + 44) return std::nullopt;
    c = counts(at);
    at += 44;
    time_size = 8;
  }
  Zone z;
  z.name = name;
  size_t need = at + c[3] * time_size + c[3] + c[4] * 6 + c[5];
  if (d.size() < need) return std::nullopt;
  for (uint32_t i = 0; i < c[3]; ++i, at += time_size) {
    int64_t t = time_size == 8 ? int64_t((uint64_t(Be32(d, at)) << 32) | Be32(d, at + 4))
                               : int64_t(int32_t(Be32(d, at)));
    z.transitions.push_back(t);
  }
  for (uint32_t i = 0; i < c[3]; ++i) z.type_of.push_back(uint8_t(d[at++]));
  for (uint32_t i = 0; i < c[4]; ++i, at += 6) {
    z.offsets.push_back(int32_t(Be32(d, at)));
    z.abbr_index.push_back(uint8_t(d[at + 5]));
  }
  z.abbreviations = d.substr(at, c[5]);
  return z;
}

struct Moment {
  int64_t wall_us = 0;  // the wall time, as microseconds since 1970-01-01 00:00 of it
  bool aware = false;
  int32_t offset_s = 0;
  std::string zone;  // "" for a fixed offset
  bool date_only = false;
};

Value ZoneValue(const std::string& name);

Value MomentValue(const Moment& m) {
  int64_t days = m.wall_us >= 0 ? m.wall_us / kMicrosPerDay
                                : -((-m.wall_us + kMicrosPerDay - 1) / kMicrosPerDay);
  int64_t rest = m.wall_us - days * kMicrosPerDay;
  int64_t y, mo, d;
  CivilFromDays(days, y, mo, d);
  int64_t hh = rest / 3'600'000'000, mi = rest / 60'000'000 % 60, se = rest / 1'000'000 % 60,
          us = rest % 1'000'000;
  ValueDict v;
  std::string text = fmt::format("{:04}-{:02}-{:02}", y, mo, d);
  std::string iso = text;
  if (!m.date_only) {
    std::string clock = fmt::format("{:02}:{:02}:{:02}", hh, mi, se);
    if (us) clock += fmt::format(".{:06}", us);
    if (m.aware) {
      int32_t off = m.offset_s;
      char sign = off < 0 ? '-' : '+';
      off = off < 0 ? -off : off;
      clock += fmt::format("{}{:02}:{:02}", sign, off / 3600, off / 60 % 60);
    }
    text += " " + clock;
    iso += "T" + clock;
  }
  v.text = text;
  v.Set("year", Value(y));
  v.Set("month", Value(mo));
  v.Set("day", Value(d));
  if (!m.date_only) {
    v.Set("hour", Value(hh));
    v.Set("minute", Value(mi));
    v.Set("second", Value(se));
    v.Set("microsecond", Value(us));
    v.Set("tzinfo", m.aware ? (m.zone.empty() ? Value(fmt::format("UTC{:+}", m.offset_s / 3600))
                                              : ZoneValue(m.zone))
                            : Value());
  }
  v.Set("isoformat", Value(Function([iso](const Arguments&) { return Value(iso); })));
  v.Set("strftime", Value(Function([y, mo, d, hh, mi, se](const Arguments& a) -> Value {
          if (a.positional.empty()) throw TemplateError(a.line, "strftime() needs a format");
          std::tm tm{};
          tm.tm_year = static_cast<int>(y - 1900);
          tm.tm_mon = static_cast<int>(mo - 1);
          tm.tm_mday = static_cast<int>(d);
          tm.tm_hour = static_cast<int>(hh);
          tm.tm_min = static_cast<int>(mi);
          tm.tm_sec = static_cast<int>(se);
          tm.tm_wday = static_cast<int>((DaysFromCivil(y, mo, d) % 7 + 11) % 7);
          char buf[256];
          size_t n = std::strftime(buf, sizeof buf, a.positional[0].Str().c_str(), &tm);
          return Value(std::string(buf, n));
        })));
  // POSIX seconds; a naive datetime is read as UTC (the platform's servers run in UTC).
  double ts = static_cast<double>(m.wall_us - int64_t(m.offset_s) * 1'000'000) / 1e6;
  v.Set("timestamp", Value(Function([ts](const Arguments&) { return Value(ts); })));
  Moment date = m;
  date.date_only = true;
  date.wall_us = days * kMicrosPerDay;
  v.Set("date", Value(Function([date](const Arguments&) { return MomentValue(date); })));
  // What localize() and friends read back.
  v.Set("__pdv_wall_us", Value(m.wall_us));
  v.Set("__pdv_aware", Value(m.aware));
  return Value(std::move(v));
}

int64_t IntArg(const Arguments& a, size_t i, const char* name, int64_t fallback, bool required) {
  const Value* v = a.Get(i, name);
  if (!v || v->is_none()) {
    if (required) throw TemplateError(a.line, fmt::format("datetime: {} is required", name));
    return fallback;
  }
  if (!v->is_int())
    throw TemplateError(a.line, fmt::format("datetime: {} must be an integer", name));
  return v->as_int();
}

Moment FromParts(const Arguments& a, bool date_only) {
  int64_t y = IntArg(a, 0, "year", 0, true), mo = IntArg(a, 1, "month", 0, true),
          d = IntArg(a, 2, "day", 0, true);
  if (mo < 1 || mo > 12 || d < 1 || d > 31)
    throw TemplateError(a.line, "datetime: date out of range");
  Moment m;
  m.date_only = date_only;
  m.wall_us = DaysFromCivil(y, mo, d) * kMicrosPerDay;
  if (!date_only) {
    m.wall_us += IntArg(a, 3, "hour", 0, false) * 3'600'000'000 +
                 IntArg(a, 4, "minute", 0, false) * 60'000'000 +
                 IntArg(a, 5, "second", 0, false) * 1'000'000 +
                 IntArg(a, 6, "microsecond", 0, false);
    const Value* tz = a.Get(7, "tzinfo");
    if (tz && tz->is_dict()) {
      // As in Python: a pytz zone given as tzinfo keeps its first (local mean time) offset.
      const Value* name = tz->dict().Find("zone");
      auto zone = name ? LoadZone(name->Str()) : std::nullopt;
      if (!zone) throw TemplateError(a.line, "datetime: tzinfo is not a known zone");
      m.aware = true;
      m.zone = zone->name;
      m.offset_s = zone->offsets.empty() ? 0 : zone->offsets[0];
    }
  }
  return m;
}

// now() and utcnow() alike: naive, in UTC (the platform's servers run in UTC).
Moment Now() {
  auto now = std::chrono::system_clock::now();
  Moment m;
  m.wall_us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  return m;
}

// fromisoformat(): YYYY-MM-DD[( |T)HH:MM[:SS[.ffffff]]][Z|±HH:MM]
Moment ParseIso(const std::string& text, int line) {
  static const std::regex kIso(
      R"((\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?)");
  std::smatch m;
  if (!std::regex_match(text, m, kIso)) {
    throw TemplateError(line, fmt::format("fromisoformat: invalid isoformat string: '{}'", text));
  }
  auto num = [&](int i) { return m[i].matched ? std::stoll(m[i].str()) : 0; };
  int64_t y = num(1), mo = num(2), d = num(3);
  bool valid = mo >= 1 && mo <= 12 && d >= 1 && num(4) < 24 && num(5) < 60 && num(6) < 60;
  // The day exists in that month: it survives the round trip through the day count.
  int64_t ry = 0, rm = 0, rd = 0;
  if (valid) CivilFromDays(DaysFromCivil(y, mo, d), ry, rm, rd);
  if (!valid || ry != y || rm != mo || rd != d) {
    throw TemplateError(line, fmt::format("fromisoformat: invalid isoformat string: '{}'", text));
  }
  Moment out;
  out.wall_us = DaysFromCivil(num(1), num(2), num(3)) * kMicrosPerDay + num(4) * 3'600'000'000 +
                num(5) * 60'000'000 + num(6) * 1'000'000;
  if (m[7].matched) {
    std::string frac = m[7].str();
    frac.resize(6, '0');
    out.wall_us += std::stoll(frac);
  }
  if (m[8].matched) {
    out.aware = true;
    std::string z = m[8].str();
    if (z != "Z") {
      int sign = z[0] == '-' ? -1 : 1;
      std::string digits;
      for (char c : z.substr(1)) {
        if (c != ':') digits += c;
      }
      out.offset_s =
          sign * (std::stoi(digits.substr(0, 2)) * 3600 + std::stoi(digits.substr(2)) * 60);
    }
  }
  return out;
}

Value ZoneValue(const std::string& name) {
  ValueDict z;
  z.text = name;
  z.Set("zone", Value(name));
  // localize(naive): the same wall time in this zone, at the offset it had then.
  z.Set("localize", Value(Function([name](const Arguments& a) -> Value {
          const Value* dt = a.Get(0, "dt");
          if (!dt || !dt->is_dict() || !dt->dict().Find("__pdv_wall_us")) {
            throw TemplateError(a.line, "localize() needs a datetime");
          }
          if (dt->dict().Find("__pdv_aware")->Truthy()) {
            throw TemplateError(a.line, "localize(): not a naive datetime (tzinfo is already set)");
          }
          auto zone = LoadZone(name);
          if (!zone) throw TemplateError(a.line, "unknown time zone " + name);
          Moment m;
          m.wall_us = dt->dict().Find("__pdv_wall_us")->as_int();
          m.aware = true;
          m.zone = name;
          m.offset_s = zone->OffsetForLocal(m.wall_us / 1'000'000);
          return MomentValue(m);
        })));
  return Value(std::move(z));
}

}  // namespace

Value DatetimeModule() {
  ValueDict datetime_class;
  datetime_class.call = std::make_shared<Function>(
      [](const Arguments& a) { return MomentValue(FromParts(a, false)); });
  datetime_class.Set("now", Value(Function([](const Arguments&) { return MomentValue(Now()); })));
  datetime_class.Set("utcnow",
                     Value(Function([](const Arguments&) { return MomentValue(Now()); })));
  datetime_class.Set("fromisoformat", Value(Function([](const Arguments& a) -> Value {
                       if (a.positional.empty())
                         throw TemplateError(a.line, "fromisoformat() needs a string");
                       return MomentValue(ParseIso(a.positional[0].Str(), a.line));
                     })));
  datetime_class.Set(
      "strptime", Value(Function([](const Arguments& a) -> Value {
        if (a.positional.size() < 2)
          throw TemplateError(a.line, "strptime() needs a string and a format");
        std::tm tm{};
        std::string text = a.positional[0].Str();
        const char* end = ::strptime(text.c_str(), a.positional[1].Str().c_str(), &tm);
        if (!end || *end) {
          throw TemplateError(a.line, fmt::format("time data '{}' does not match "
                                                  "format '{}'",
                                                  text, a.positional[1].Str()));
        }
        Moment m;
        m.wall_us = DaysFromCivil(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday) * kMicrosPerDay +
                    (tm.tm_hour * 3600LL + tm.tm_min * 60LL + tm.tm_sec) * 1'000'000;
        return MomentValue(m);
      })));
  ValueDict date_class;
  date_class.call = std::make_shared<Function>(
      [](const Arguments& a) { return MomentValue(FromParts(a, true)); });
  date_class.Set("today", Value(Function([](const Arguments&) {
                   Moment m = Now();
                   m.date_only = true;
                   m.wall_us -= m.wall_us % kMicrosPerDay;
                   return MomentValue(m);
                 })));
  ValueDict module;
  module.Set("datetime", Value(std::move(datetime_class)));
  module.Set("date", Value(std::move(date_class)));
  return Value(std::move(module));
}

Value PytzModule() {
  ValueDict pytz;
  pytz.Set("timezone", Value(Function([](const Arguments& a) -> Value {
             if (a.positional.empty()) throw TemplateError(a.line, "pytz.timezone() needs a name");
             std::string name = a.positional[0].Str();
             if (!LoadZone(name)) {
               throw TemplateError(a.line, fmt::format("pytz: unknown time zone '{}'", name));
             }
             return ZoneValue(name);
           })));
  pytz.Set("utc", ZoneValue("UTC"));
  return Value(std::move(pytz));
}

Value UtcDatetime(std::chrono::system_clock::time_point t) {
  Moment m;
  m.wall_us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  m.aware = true;
  m.zone = "UTC";
  return MomentValue(m);
}

}  // namespace pdv::transform
