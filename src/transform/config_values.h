#pragma once

// What a rendered config value is, as dbt's native Jinja rendering makes it: a
// dbt_project.yml or property-file value such as `+enabled: "{{ var('x', false) }}"`
// renders to the text "False", which dbt reads as the boolean false. And the configs dbt
// types as booleans, read so that a wrong value is an answer, never an exception.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/status.h"

namespace pdv::transform {

// The rendered text as dbt's native rendering reads it: True/False (any case) a boolean,
// None/null a null, an integer or a decimal number a number, anything else the text.
nlohmann::json NativeValue(const std::string& rendered);

// `value` as a boolean config: a boolean, or text true/false/yes/no/on/off/1/0 (any case,
// as dbt's config validation accepts); nullopt for anything else.
std::optional<bool> ConfigBool(const nlohmann::json& value);

// Every boolean config of `config` (enabled, full_refresh, quote_columns, ...) made a
// boolean; an error naming the key and its value where one is not (`where`: the file).
Status NormalizeBoolConfigs(nlohmann::json& config, const std::string& where);

// config[key] as a boolean; `fallback` when it is absent or (already refused at load)
// not one.
bool ConfigFlag(const nlohmann::json& config, const char* key, bool fallback);

}  // namespace pdv::transform
