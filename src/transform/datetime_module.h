#pragma once

// The parts of Python's datetime and pytz that dbt projects call through `modules`
// (dbt_date among them): date(), datetime() (naive or with a tzinfo), datetime.now(),
// utcnow(), fromisoformat(), strptime(); pytz.timezone(name) with localize() and
// .zone, from the system's tz database (/usr/share/zoneinfo). A date or datetime is a
// template value with Python's fields (year ... microsecond, tzinfo) and methods
// (isoformat, strftime, timestamp, date), rendering as Python's str() of it.

#include <chrono>
#include <string>

#include "transform/jinja_value.h"

namespace pdv::transform {

jinja::Value DatetimeModule();
jinja::Value PytzModule();

// An aware UTC datetime (dbt's run_started_at).
jinja::Value UtcDatetime(std::chrono::system_clock::time_point t);

}  // namespace pdv::transform
