#include "transform/adapter_api.h"

#include <fmt/format.h>

#include "transform/adapter.h"
#include "transform/context.h"

namespace pdv::transform {

using jinja::Arguments;
using jinja::Function;
using jinja::TemplateError;
using jinja::Value;
using jinja::ValueDict;
using jinja::ValueList;

namespace {

std::string Part(const Value& relation, const char* key) {
  if (!relation.is_dict()) return "";
  const Value* v = relation.dict().Find(key);
  return v && !v->is_none() && !v->is_undefined() ? v->Str() : "";
}

RelationRef RefOf(const Value& relation) {
  std::string id = Part(relation, "identifier");
  return {Part(relation, "schema"), id.empty() ? Part(relation, "name") : id};
}

const Value& Relation(const Arguments& a, size_t index, const char* name, const char* fn) {
  const Value* v = a.Get(index, name);
  if (!v || !v->is_dict())
    throw TemplateError(a.line, fmt::format("adapter.{}() needs a relation ({})", fn, name));
  return *v;
}

// A string literal (standard_conforming_strings, PostgreSQL's default since 9.1).
std::string Literal(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// The relation's kind as the SQL keyword: its type when it says, else the catalog's.
std::string KindKeyword(Adapter* db, const Value& relation, int line) {
  std::string type = Part(relation, "type");
  if (type == "view") return "view";
  if (type == "materialized_view") return "materialized view";
  if (type == "table") return "table";
  RelationRef ref = RefOf(relation);
  auto rows = db->QueryText(fmt::format(
      "select c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace where "
      "n.nspname = {} and c.relname = {}",
      Literal(ref.schema), Literal(ref.identifier)));
  if (!rows.ok()) throw TemplateError(line, rows.message());
  if (rows->empty() || !(*rows)[0][0]) return "";
  const std::string& k = *(*rows)[0][0];
  return k == "v" ? "view" : k == "m" ? "materialized view" : "table";
}

void Run(Adapter* db, const std::string& sql, const char* fn, int line) {
  StatementResult r = db->Execute(sql);
  if (!r.ok) throw TemplateError(line, fmt::format("adapter.{}: {}", fn, r.error));
}

// schema.name, or the name alone for a temporary relation (no schema).
std::string QuotedName(Adapter* db, const RelationRef& ref) {
  return ref.schema.empty() ? db->Quote(ref.identifier) : ref.Quoted();
}

RelationKind CacheKind(const std::string& keyword) {
  return keyword.empty()     ? RelationKind::kNone
         : keyword == "view" ? RelationKind::kView
                             : RelationKind::kTable;
}

}  // namespace

void AddAdapterApi(ValueDict& adapter, Adapter* db, const std::string& database) {
  adapter.Set("drop_relation", Value(Function([db](const Arguments& a) -> Value {
                const Value& rel = Relation(a, 0, "relation", "drop_relation");
                if (!db) return Value("");
                std::string kind = KindKeyword(db, rel, a.line);
                if (kind.empty()) return Value("");
                RelationRef ref = RefOf(rel);
                // `cascade` takes the views on it along: the cache forgets them too.
                std::vector<RelationRef> views;
                if (!ref.schema.empty()) {
                  auto dependent = db->DependentViews(ref);
                  if (!dependent.ok()) throw TemplateError(a.line, dependent.message());
                  views = std::move(*dependent);
                }
                Run(db, fmt::format("drop {} if exists {} cascade", kind, QuotedName(db, ref)),
                    "drop_relation", a.line);
                for (const auto& v : views)
                  db->CacheRelation(v.schema, v.identifier, RelationKind::kNone);
                db->CacheRelation(ref.schema, ref.identifier, RelationKind::kNone);
                return Value("");
              })));
  adapter.Set("rename_relation", Value(Function([db](const Arguments& a) -> Value {
                const Value& from = Relation(a, 0, "from_relation", "rename_relation");
                const Value& to = Relation(a, 1, "to_relation", "rename_relation");
                if (!db) return Value("");
                std::string kind = KindKeyword(db, from, a.line);
                RelationRef f = RefOf(from), t = RefOf(to);
                if (kind.empty()) {
                  throw TemplateError(a.line, fmt::format("adapter.rename_relation: {} does "
                                                          "not exist",
                                                          f.Quoted()));
                }
                Run(db,
                    fmt::format("alter {} {} rename to {}", kind, QuotedName(db, f),
                                db->Quote(t.identifier)),
                    "rename_relation", a.line);
                db->CacheRelation(f.schema, f.identifier, RelationKind::kNone);
                db->CacheRelation(f.schema, t.identifier, CacheKind(kind));
                return Value("");
              })));
  adapter.Set("truncate_relation", Value(Function([db](const Arguments& a) -> Value {
                const Value& rel = Relation(a, 0, "relation", "truncate_relation");
                if (db) {
                  Run(db, fmt::format("truncate table {}", QuotedName(db, RefOf(rel))),
                      "truncate_relation", a.line);
                }
                return Value("");
              })));
  adapter.Set("create_schema", Value(Function([db](const Arguments& a) -> Value {
                const Value& rel = Relation(a, 0, "relation", "create_schema");
                if (db) Run(db, db->CreateSchemaSql(Part(rel, "schema")), "create_schema", a.line);
                return Value("");
              })));
  adapter.Set(
      "drop_schema", Value(Function([db](const Arguments& a) -> Value {
        const Value& rel = Relation(a, 0, "relation", "drop_schema");
        if (db) {
          Run(db, fmt::format("drop schema if exists {} cascade", db->Quote(Part(rel, "schema"))),
              "drop_schema", a.line);
        }
        return Value("");
      })));
  adapter.Set(
      "list_relations_without_caching", Value(Function([db, database](const Arguments& a) -> Value {
        const Value& rel = Relation(a, 0, "schema_relation", "list_relations_without_caching");
        ValueList out;
        if (!db) return Value(std::move(out));
        std::string schema = Part(rel, "schema");
        auto rows = db->QueryText(fmt::format(
            "select c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = "
            "c.relnamespace where n.nspname = {} and c.relkind in ('r', 'p', 'v', 'm', 'f') "
            "order by c.relname",
            Literal(schema)));
        if (!rows.ok())
          throw TemplateError(a.line, "list_relations_without_caching: " + rows.message());
        for (const auto& row : *rows) {
          std::string kind = row[1].value_or("r");
          out.push_back(RelationValue(database, schema, row[0].value_or(""),
                                      kind == "v"   ? "view"
                                      : kind == "m" ? "materialized_view"
                                                    : "table"));
        }
        return Value(std::move(out));
      })));
  adapter.Set("already_exists", Value(Function([db](const Arguments& a) -> Value {
                const Value* schema = a.Get(0, "schema");
                const Value* name = a.Get(1, "name");
                if (!schema || !name)
                  throw TemplateError(a.line, "adapter.already_exists(schema, name)");
                if (!db) return Value(false);
                auto kind = db->LookUpRelation(schema->Str(), name->Str());
                if (!kind.ok()) throw TemplateError(a.line, kind.message());
                return Value(*kind != RelationKind::kNone);
              })));
  // What a materialization made or removed by its own SQL, for the relation cache.
  auto cache = [db](const Value& rel, RelationKind kind) {
    if (!db || !rel.is_dict()) return;
    RelationRef ref = RefOf(rel);
    std::string type = Part(rel, "type");
    if (kind != RelationKind::kNone && type == "view") kind = RelationKind::kView;
    db->CacheRelation(ref.schema, ref.identifier, kind);
  };
  adapter.Set("cache_added", Value(Function([cache](const Arguments& a) -> Value {
                cache(Relation(a, 0, "relation", "cache_added"), RelationKind::kTable);
                return Value("");
              })));
  adapter.Set("cache_dropped", Value(Function([cache](const Arguments& a) -> Value {
                cache(Relation(a, 0, "relation", "cache_dropped"), RelationKind::kNone);
                return Value("");
              })));
  adapter.Set("cache_renamed", Value(Function([cache](const Arguments& a) -> Value {
                const Value& from = Relation(a, 0, "from_relation", "cache_renamed");
                cache(from, RelationKind::kNone);
                cache(Relation(a, 1, "to_relation", "cache_renamed"), RelationKind::kTable);
                return Value("");
              })));
  // A node's statements are one transaction that the runner commits once the
  // materialization returns (with the run's fence): commit() inside it ends nothing.
  adapter.Set("commit", Value(Function([](const Arguments&) { return Value(""); })));
}

Value ColumnApi() {
  auto make = [](const Arguments& a) -> Value {
    const Value* name = a.Get(0, "name");
    const Value* dtype = a.Get(1, "dtype");
    if (!dtype) dtype = a.Get(1, "label_or_dtype");
    if (!name || !dtype) throw TemplateError(a.line, "api.Column(name, dtype)");
    auto opt = [&](size_t i, const char* key) {
      const Value* v = a.Get(i, key);
      return v ? *v : Value();
    };
    return ColumnValue(name->Str(), dtype->Str(), opt(2, "char_size"), opt(3, "numeric_precision"),
                       opt(4, "numeric_scale"));
  };
  ValueDict column;
  column.call = std::make_shared<Function>(make);
  column.Set("create", Value(Function(make)));
  column.Set("translate_type", Value(Function([](const Arguments& a) -> Value {
               const Value* t = a.Get(0, "dtype");
               if (!t) throw TemplateError(a.line, "api.Column.translate_type(dtype)");
               static const std::pair<const char*, const char*> kAliases[] = {
                   {"STRING", "text"},
                   {"TIMESTAMP", "timestamp"},
                   {"FLOAT", "float"},
                   {"INTEGER", "integer"},
                   {"BOOLEAN", "boolean"}};
               for (const auto& [from, to] : kAliases) {
                 if (t->Str() == from) return Value(to);
               }
               return *t;
             })));
  column.Set("string_type", Value(Function([](const Arguments& a) -> Value {
               const Value* size = a.Get(0, "size");
               return Value(size && size->is_int()
                                ? fmt::format("character varying({})", size->as_int())
                                : std::string("character varying"));
             })));
  column.Set("numeric_type", Value(Function([](const Arguments& a) -> Value {
               const Value* dtype = a.Get(0, "dtype");
               const Value* precision = a.Get(1, "precision");
               const Value* scale = a.Get(2, "scale");
               std::string t = dtype ? dtype->Str() : "numeric";
               if (precision && scale && !precision->is_none() && !scale->is_none())
                 return Value(fmt::format("{}({},{})", t, precision->Str(), scale->Str()));
               return Value(t);
             })));
  return Value(std::move(column));
}

}  // namespace pdv::transform
