#pragma once

// The part of dbt's `adapter` and `api` objects that materializations call: relations
// dropped, renamed, truncated and listed, schemas made, the relation cache told, and
// api.Column. Each statement runs on the adapter's connection, inside the node's
// transaction when one is open.

#include <string>

#include "transform/jinja_value.h"

namespace pdv::transform {

class Adapter;

// Adds drop_relation, rename_relation, truncate_relation, create_schema, drop_schema,
// list_relations_without_caching, already_exists, cache_added/dropped/renamed and commit
// to `adapter`. `db` is borrowed for the functions' lifetime; null (parse mode or no
// connection): they do nothing and answer empty. A failed statement is a TemplateError.
void AddAdapterApi(jinja::ValueDict& adapter, Adapter* db, const std::string& database);

// api.Column: api.Column(name, dtype), api.Column.create(name, dtype), translate_type,
// string_type(size), numeric_type(dtype, precision, scale).
jinja::Value ColumnApi();

}  // namespace pdv::transform
