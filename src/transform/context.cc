#include "transform/context.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <regex>

#include "transform/adapter.h"
#include "transform/adapter_api.h"
#include "transform/datetime_module.h"
#include "transform/model_versions.h"

namespace pdv::transform {

using jinja::Arguments;
using jinja::Function;
using jinja::TemplateError;
using jinja::Value;
using jinja::ValueDict;
using jinja::ValueList;

void MergeConfig(nlohmann::json& into, const nlohmann::json& add) {
  for (const auto& [raw_key, value] : add.items()) {
    std::string key = raw_key;
    if (!key.empty() && key[0] == '+') key.erase(0, 1);
    if (key == "pre-hook") key = "pre_hook";
    if (key == "post-hook") key = "post_hook";
    if (key == "tags" || key == "pre_hook" || key == "post_hook") {
      nlohmann::json& list = into[key];
      if (!list.is_array()) list = nlohmann::json::array();
      if (value.is_array()) {
        for (const auto& v : value) list.push_back(v);
      } else if (!value.is_null()) {
        list.push_back(value);
      }
    } else if (key == "grants" && value.is_object() && into[key].is_object()) {
      // dbt merges grants by privilege: a nearer level's privilege replaces the outer
      // one's grantees, a `+privilege` adds to them.
      for (const auto& [privilege, grantees] : value.items()) {
        if (!privilege.starts_with("+")) {
          into[key][privilege] = grantees;
          continue;
        }
        nlohmann::json& list = into[key][privilege.substr(1)];
        if (list.is_string()) list = nlohmann::json::array({list});
        if (!list.is_array()) list = nlohmann::json::array();
        for (const auto& g : grantees.is_array() ? grantees : nlohmann::json::array({grantees}))
          list.push_back(g);
      }
    } else {
      into[key] = value;
    }
  }
}

namespace {

std::vector<std::string> StringArgs(const Arguments& a, const char* fn) {
  std::vector<std::string> out;
  for (const auto& v : a.positional) {
    if (!v.is_string()) throw TemplateError(a.line, fmt::format("{}() takes string arguments", fn));
    out.push_back(v.as_string());
  }
  if (out.empty()) throw TemplateError(a.line, fmt::format("{}() needs a name", fn));
  return out;
}

Value TargetValue(const Target& t) {
  ValueDict d;
  d.Set("name", Value(t.name));
  d.Set("type", Value(t.type));
  d.Set("schema", Value(t.schema));
  d.Set("database", Value(t.database));
  d.Set("dbname", Value(t.database));
  d.Set("host", Value(t.host));
  d.Set("user", Value(t.user));
  d.Set("port", Value(static_cast<int64_t>(t.port)));
  d.Set("threads", Value(static_cast<int64_t>(t.threads)));
  return Value(std::move(d));
}

}  // namespace

Value NodeValue(const Node& node) {
  ValueDict d;
  d.Set("name", Value(node.name));
  d.Set("unique_id", Value(node.unique_id));
  d.Set("resource_type", Value(std::string(NodeTypeName(node.resource_type))));
  d.Set("package_name", Value(node.package_name));
  d.Set("original_file_path", Value(node.original_file_path));
  d.Set("path", Value(node.path));
  d.Set("database", Value(node.database));
  d.Set("schema", Value(node.schema));
  d.Set("alias", Value(node.alias));
  d.Set("identifier",
        Value(node.resource_type == NodeType::kSource ? node.identifier : node.alias));
  d.Set("source_name", Value(node.source_name));
  d.Set("description", Value(node.description));
  d.Set("fqn", JsonToValue(node.fqn));
  d.Set("tags", JsonToValue(node.tags()));
  d.Set("config", JsonToValue(node.config));
  d.Set("columns", JsonToValue(node.columns));
  d.Set("raw_code", Value(node.raw_code));
  ValueDict depends;
  depends.Set("nodes", JsonToValue(node.depends_on));
  depends.Set("macros", Value(ValueList{}));
  d.Set("depends_on", Value(std::move(depends)));
  d.Set("version", node.version.empty() ? Value() : Value(node.version));
  d.Set("latest_version", node.latest_version.empty() ? Value() : Value(node.latest_version));
  d.Set("refs", JsonToValue(node.refs));
  d.Set("sources", JsonToValue(node.sources));
  return Value(std::move(d));
}

Value EphemeralValue(const Node& node) {
  Value v = RelationValue("", "", "__dbt__cte__" + node.name);
  v.dict().text = "__dbt__cte__" + node.name;
  v.dict().Set("is_cte", Value(true));
  return v;
}

std::shared_ptr<const Value> Project::GraphValue() const {
  std::call_once(graph_cache_->once, [this] {
    ValueDict graph_nodes, graph_sources;
    for (const auto& [id, n] : nodes) {
      (n.resource_type == NodeType::kSource ? graph_sources : graph_nodes).Set(id, NodeValue(n));
    }
    ValueDict graph;
    graph.Set("nodes", Value(std::move(graph_nodes)));
    graph.Set("sources", Value(std::move(graph_sources)));
    graph.Set("exposures", Value(ValueDict{}));
    graph.Set("metrics", Value(ValueDict{}));
    graph_cache_->value = std::make_shared<const Value>(Value(std::move(graph)));
  });
  return graph_cache_->value;
}

namespace {

using RunQueryFn = std::function<Result<QueryResult>(const std::string& sql)>;

// A dict field as text ("" when absent or none).
std::string Field(const Value& v, const char* key) {
  if (!v.is_dict()) return "";
  const Value* f = v.dict().Find(key);
  return f && !f->is_none() && !f->is_undefined() ? f->Str() : "";
}

}  // namespace

// dbt's Column: .name, .column, .quoted, .dtype, .data_type, .char_size,
// .numeric_precision, .numeric_scale and the is_* tests.
Value ColumnValue(const std::string& name, const std::string& dtype, const Value& char_size,
                  const Value& precision, const Value& scale) {
  ValueDict c;
  c.text = name;
  c.Set("name", Value(name));
  c.Set("column", Value(name));
  c.Set("quoted", Value(QuoteIdentifier(name)));
  c.Set("dtype", Value(dtype));
  std::string data_type = dtype;
  if ((dtype == "character varying" || dtype == "character") && char_size.is_int()) {
    data_type = fmt::format("{}({})", dtype, char_size.as_int());
  } else if (dtype == "numeric" && precision.is_int() && scale.is_int()) {
    data_type = fmt::format("numeric({},{})", precision.as_int(), scale.as_int());
  }
  c.Set("data_type", Value(data_type));
  c.Set("char_size", char_size);
  c.Set("numeric_precision", precision);
  c.Set("numeric_scale", scale);
  auto is = [&](std::initializer_list<const char*> types) {
    bool r = false;
    for (const char* t : types) r = r || dtype == t;
    return Value(Function([r](const Arguments&) { return Value(r); }));
  };
  c.Set("is_string", is({"text", "character varying", "character", "varchar", "char"}));
  // dbt's Column.string_size(): the declared length, 256 for an unbounded text.
  c.Set("string_size", Value(Function([char_size](const Arguments&) {
          return char_size.is_int() ? char_size : Value(256);
        })));
  c.Set("is_integer", is({"integer", "bigint", "smallint"}));
  c.Set("is_float", is({"real", "double precision"}));
  c.Set("is_numeric", is({"numeric"}));
  c.Set("is_number", is({"integer", "bigint", "smallint", "real", "double precision", "numeric"}));
  return Value(std::move(c));
}

namespace {

// The adapter's catalog lookups: columns of a relation, a relation if it exists.
Value ColumnsOf(Adapter* adapter, const Value& relation, int line) {
  if (!adapter) return Value(ValueList{});
  std::string schema = Field(relation, "schema"), name = Field(relation, "identifier");
  if (name.empty()) name = Field(relation, "name");
  auto columns = adapter->ColumnsOf(schema, name);
  if (!columns.ok()) throw TemplateError(line, "get_columns_in_relation: " + columns.message());
  auto number = [](const std::optional<int64_t>& n) { return n ? Value(*n) : Value(); };
  ValueList out;
  for (const auto& c : *columns) {
    out.push_back(ColumnValue(c.name, c.base_type, number(c.char_size), number(c.numeric_precision),
                              number(c.numeric_scale)));
  }
  return Value(std::move(out));
}

Value RelationIfExists(Adapter* adapter, const std::string& database, const std::string& schema,
                       const std::string& identifier, int line) {
  if (!adapter) return Value();
  auto kind = adapter->LookUpRelation(schema, identifier);
  if (!kind.ok()) throw TemplateError(line, "get_relation: " + kind.message());
  if (*kind == RelationKind::kNone) return Value();
  return RelationValue(database, schema, identifier,
                       *kind == RelationKind::kView ? "view" : "table");
}

Value StringRelation(const Arguments& a, const std::string& default_database) {
  auto arg = [&](size_t i, const char* name) {
    const Value* v = a.Get(i, name);
    return v && !v->is_none() ? v->Str() : std::string();
  };
  std::string db = arg(0, "database");
  return RelationValue(db.empty() ? default_database : db, arg(1, "schema"), arg(2, "identifier"),
                       arg(3, "type"));
}

Value AdapterValue(const Project* p, const RunQueryFn& run, Adapter* db, bool parse) {
  ValueDict adapter;
  const std::string type = db ? db->Type() : "postgres";
  adapter.Set("quote", Value(Function([db](const Arguments& a) -> Value {
                if (a.positional.empty())
                  throw TemplateError(a.line, "adapter.quote() needs a name");
                std::string name = a.positional[0].Str();
                return Value(db ? db->Quote(name) : QuoteIdentifier(name));
              })));
  // dbt's dispatch: <adapter>__<name>, then default__<name>, in each package of the
  // namespace's search order (dbt_project.yml `dispatch:`, else the root project and
  // then the namespace); no namespace: the unqualified search order.
  adapter.Set(
      "dispatch", Value(Function([p, type](const Arguments& a) -> Value {
        const Value* name = a.Get(0, "macro_name");
        const Value* ns = a.Get(1, "macro_namespace");
        if (!name || !name->is_string())
          throw TemplateError(a.line, "adapter.dispatch() needs a macro name");
        const std::string& macro = name->as_string();
        if (macro.find('.') != std::string::npos) {
          throw TemplateError(a.line, fmt::format("adapter.dispatch('{}'): pass the package as "
                                                  "macro_namespace, not in the name",
                                                  macro));
        }
        if (!a.scope) throw TemplateError(a.line, "adapter.dispatch() outside a render");
        std::vector<std::string> search;
        bool qualified = ns && ns->is_string();
        if (qualified) {
          auto it = p->dispatch.find(ns->as_string());
          search = it != p->dispatch.end() ? it->second
                                           : std::vector<std::string>{p->name, ns->as_string()};
        } else {
          search = {""};
        }
        for (const auto& pkg : search) {
          for (const std::string& prefix : {type + "__", std::string("default__")}) {
            Value m = pkg.empty() ? a.scope->FindMacro(prefix + macro)
                                  : a.scope->FindMacro(pkg, prefix + macro);
            if (m.is_callable()) return m;
          }
        }
        std::string where;
        for (const auto& pkg : search) where += (where.empty() ? "" : ", ") + pkg;
        throw TemplateError(a.line,
                            fmt::format("adapter.dispatch: no macro {2}__{0} or default__{0} "
                                        "in {1}",
                                        macro, qualified ? where : "the search order", type));
      })));
  adapter.Set("execute", Value(Function([run, parse](const Arguments& a) -> Value {
                const Value* sql = a.Get(0, "sql");
                if (!sql) throw TemplateError(a.line, "adapter.execute() needs a SQL string");
                ValueDict response;
                if (parse || !run) {
                  response.Set("_message", Value("OK"));
                  ValueDict empty;
                  empty.Set("rows", Value(ValueList{}));
                  empty.Set("columns", Value(ValueList{}));
                  empty.Set("column_names", Value(ValueList{}));
                  return Value(ValueList{Value(std::move(response)), Value(std::move(empty))});
                }
                auto r = run(sql->Str());
                if (!r.ok()) throw TemplateError(a.line, "adapter.execute: " + r.message());
                response.text = r->status;
                response.Set("_message", Value(r->status));
                response.Set("code", Value(r->status.substr(0, r->status.find(' '))));
                size_t space = r->status.rfind(' ');
                int64_t rows = 0;
                if (space != std::string::npos) {
                  try {
                    rows = std::stoll(r->status.substr(space + 1));
                  } catch (const std::exception&) {
                  }
                }
                response.Set("rows_affected", Value(rows));
                return Value(ValueList{Value(std::move(response)), r->table});
              })));
  adapter.Set("get_columns_in_relation", Value(Function([db](const Arguments& a) -> Value {
                const Value* rel = a.Get(0, "relation");
                if (!rel) throw TemplateError(a.line, "get_columns_in_relation() needs a relation");
                return ColumnsOf(db, *rel, a.line);
              })));
  adapter.Set("get_missing_columns", Value(Function([db](const Arguments& a) -> Value {
                const Value* from = a.Get(0, "from_relation");
                const Value* to = a.Get(1, "to_relation");
                if (!from || !to)
                  throw TemplateError(a.line, "get_missing_columns() needs two relations");
                Value have = ColumnsOf(db, *to, a.line);
                ValueList missing;
                for (const auto& c : ColumnsOf(db, *from, a.line).list()) {
                  bool found = false;
                  for (const auto& t : have.list())
                    found = found || Field(t, "name") == Field(c, "name");
                  if (!found) missing.push_back(c);
                }
                return Value(std::move(missing));
              })));
  std::string database = p->target.database;
  adapter.Set("get_relation", Value(Function([db, database](const Arguments& a) -> Value {
                const Value* schema = a.Get(1, "schema");
                const Value* identifier = a.Get(2, "identifier");
                if (!schema || !identifier)
                  throw TemplateError(a.line, "get_relation(database, schema, identifier)");
                return RelationIfExists(db, database, schema->Str(), identifier->Str(), a.line);
              })));
  adapter.Set("load_relation", Value(Function([db, database](const Arguments& a) -> Value {
                const Value* rel = a.Get(0, "relation");
                if (!rel) throw TemplateError(a.line, "load_relation() needs a relation");
                std::string id = Field(*rel, "identifier");
                return RelationIfExists(db, database, Field(*rel, "schema"),
                                        id.empty() ? Field(*rel, "name") : id, a.line);
              })));
  adapter.Set("type", Value(Function([type](const Arguments&) { return Value(type); })));
  AddAdapterApi(adapter, db, database);
  return Value(std::move(adapter));
}

// Python's re, over std::regex's ECMAScript grammar (which shares Python's common syntax).
Value ReModule() {
  auto flags_of = [](const Arguments& a, size_t i) {
    auto f = std::regex::ECMAScript;
    const Value* v = a.Get(i, "flags");
    if (v && v->is_int() && (v->as_int() & 2)) f |= std::regex::icase;
    return f;
  };
  auto compile = [flags_of](const Arguments& a, size_t flags_at) {
    if (a.positional.empty()) throw TemplateError(a.line, "re: a pattern is required");
    try {
      return std::regex(a.positional[0].Str(), flags_of(a, flags_at));
    } catch (const std::regex_error& e) {
      throw TemplateError(
          a.line, fmt::format("re: invalid pattern '{}': {}", a.positional[0].Str(), e.what()));
    }
  };
  auto match_value = [](const std::smatch& m) {
    ValueList groups;
    for (size_t i = 1; i < m.size(); ++i) {
      groups.push_back(m[i].matched ? Value(m[i].str()) : Value());
    }
    ValueList all;
    for (size_t i = 0; i < m.size(); ++i) all.push_back(m[i].matched ? Value(m[i].str()) : Value());
    ValueDict d;
    d.text = m[0].str();
    d.Set("group", Value(Function([all](const Arguments& a) -> Value {
            size_t i = a.positional.empty() ? 0 : static_cast<size_t>(a.positional[0].as_int());
            if (i >= all.size()) throw TemplateError(a.line, "re: no such group");
            return all[i];
          })));
    d.Set("groups", Value(Function([groups](const Arguments&) { return Value(groups); })));
    return Value(std::move(d));
  };
  auto text_arg = [](const Arguments& a, size_t i) {
    if (i >= a.positional.size()) throw TemplateError(a.line, "re: a string is required");
    return a.positional[i].Str();
  };
  ValueDict re;
  re.Set("IGNORECASE", Value(2));
  re.Set("I", Value(2));
  re.Set("search", Value(Function([=](const Arguments& a) -> Value {
           std::regex r = compile(a, 2);
           std::string s = text_arg(a, 1);
           std::smatch m;
           if (!std::regex_search(s, m, r)) return Value();
           return match_value(m);
         })));
  re.Set("match", Value(Function([=](const Arguments& a) -> Value {
           std::regex r = compile(a, 2);
           std::string s = text_arg(a, 1);
           std::smatch m;
           if (!std::regex_search(s, m, r, std::regex_constants::match_continuous)) return Value();
           return match_value(m);
         })));
  re.Set("fullmatch", Value(Function([=](const Arguments& a) -> Value {
           std::regex r = compile(a, 2);
           std::string s = text_arg(a, 1);
           std::smatch m;
           if (!std::regex_match(s, m, r)) return Value();
           return match_value(m);
         })));
  re.Set("findall", Value(Function([=](const Arguments& a) -> Value {
           std::regex r = compile(a, 2);
           std::string s = text_arg(a, 1);
           ValueList out;
           for (auto it = std::sregex_iterator(s.begin(), s.end(), r); it != std::sregex_iterator();
                ++it) {
             out.emplace_back(it->size() > 1 ? (*it)[1].str() : (*it)[0].str());
           }
           return Value(std::move(out));
         })));
  re.Set("sub", Value(Function([=](const Arguments& a) -> Value {
           std::regex r = compile(a, 4);
           // Python's \1 back-references are $1 in ECMAScript's replacement syntax.
           std::string repl, py = text_arg(a, 1);
           for (size_t i = 0; i < py.size(); ++i) {
             if (py[i] == '\\' && i + 1 < py.size() &&
                 std::isdigit(static_cast<unsigned char>(py[i + 1]))) {
               repl += '$';
             } else if (py[i] == '$') {
               repl += "$$";
             } else {
               repl += py[i];
             }
           }
           return Value(std::regex_replace(text_arg(a, 2), r, repl));
         })));
  re.Set("split", Value(Function([=](const Arguments& a) -> Value {
           std::regex r = compile(a, 3);
           std::string s = text_arg(a, 1);
           ValueList out;
           for (auto it = std::sregex_token_iterator(s.begin(), s.end(), r, -1);
                it != std::sregex_token_iterator(); ++it) {
             out.emplace_back(it->str());
           }
           return Value(std::move(out));
         })));
  re.Set("escape", Value(Function([=](const Arguments& a) -> Value {
           std::string out;
           for (char c : text_arg(a, 0)) {
             if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') out += '\\';
             out += c;
           }
           return Value(std::move(out));
         })));
  return Value(std::move(re));
}

}  // namespace

ValueDict MakeContext(const Project& project, const Node& node, const ContextOptions& options,
                      ContextCapture* capture) {
  ValueDict g;
  const Project* p = &project;
  bool parse = options.parse;
  std::string from_package = node.package_name;

  auto overrides = std::make_shared<const std::map<std::string, Value>>(options.relation_overrides);
  g.Set("ref",
        Value(Function([p, capture, parse, from_package, overrides](const Arguments& a) -> Value {
          std::vector<std::string> args = StringArgs(a, "ref");
          if (args.size() > 2) throw TemplateError(a.line, "ref() takes (package, name) at most");
          const Value* version = a.Get(99, "v");
          if (!version) version = a.Get(99, "version");
          if (version && !version->is_none())
            args.back() = VersionedRefName(args.back(), version->Str());
          capture->refs.emplace_back(args, a.line);
          const Node* target =
              p->FindModelOrSeed(args.back(), args.size() == 2 ? args[0] : "", from_package);
          if (!target || !target->enabled()) {
            if (parse) return RelationValue("", "", args.back());
            throw TemplateError(
                a.line, fmt::format("ref('{}') does not name a model or seed", args.back()));
          }
          if (auto it = overrides->find(target->unique_id); it != overrides->end())
            return it->second;
          if (target->materialized() == "ephemeral" && target->resource_type == NodeType::kModel) {
            capture->ephemerals.push_back(target->unique_id);
            return EphemeralValue(*target);
          }
          return RelationValue(target->database, target->schema, target->alias);
        })));
  g.Set("source",
        Value(Function([p, capture, parse, from_package, overrides](const Arguments& a) -> Value {
          std::vector<std::string> args = StringArgs(a, "source");
          if (args.size() != 2)
            throw TemplateError(a.line, "source() takes (source_name, table_name)");
          capture->sources.emplace_back(args, a.line);
          const Node* s = p->FindSource(args[0], args[1], from_package);
          if (!s) {
            if (parse) return RelationValue("", args[0], args[1]);
            throw TemplateError(a.line, fmt::format("source('{}', '{}') is not defined in a "
                                                    "schema.yml",
                                                    args[0], args[1]));
          }
          if (auto it = overrides->find(s->unique_id); it != overrides->end()) return it->second;
          return RelationValue(s->database, s->schema, s->identifier);
        })));
  // config(...) records; config.get/require read the node's resolved config.
  ValueDict config;
  const nlohmann::json node_config = node.config;
  config.call = std::make_shared<Function>([capture](const Arguments& a) -> Value {
    nlohmann::json add = nlohmann::json::object();
    for (const auto& [k, v] : a.named) add[k] = ValueToJson(v);
    if (!a.positional.empty() && a.positional[0].is_dict()) {
      for (const auto& [k, v] : a.positional[0].dict().items) add[k] = ValueToJson(v);
    }
    MergeConfig(capture->config, add);
    return Value("");
  });
  auto config_lookup = [node_config, capture](const std::string& key) -> const nlohmann::json* {
    if (capture->config.contains(key)) return &capture->config[key];
    auto it = node_config.find(key);
    return it == node_config.end() ? nullptr : &*it;
  };
  config.Set("get", Value(Function([config_lookup](const Arguments& a) -> Value {
               const Value* key = a.Get(0, "name");
               if (!key) throw TemplateError(a.line, "config.get() needs a key");
               if (const nlohmann::json* v = config_lookup(key->Str())) return JsonToValue(*v);
               const Value* d = a.Get(1, "default");
               return d ? *d : Value();
             })));
  config.Set("require", Value(Function([config_lookup, parse](const Arguments& a) -> Value {
               const Value* key = a.Get(0, "name");
               if (!key) throw TemplateError(a.line, "config.require() needs a key");
               if (const nlohmann::json* v = config_lookup(key->Str())) return JsonToValue(*v);
               if (parse) return Value();
               throw TemplateError(a.line,
                                   fmt::format("required config '{}' is not set", key->Str()));
             })));
  g.Set("config", Value(std::move(config)));
  bool incremental = !parse && options.incremental;
  g.Set("is_incremental",
        Value(Function([incremental](const Arguments&) { return Value(incremental); })));
  g.Set("this", overrides->count("this") ? overrides->at("this")
                                         : RelationValue(node.database, node.schema, node.alias));
  g.Set("execute", Value(!parse));
  RunQueryFn run = parse ? RunQueryFn() : options.run_query;
  g.Set("run_query", Value(Function([run](const Arguments& a) -> Value {
          // Parsing never touches the database; dbt returns None there too.
          if (!run) return Value();
          const Value* sql = a.Get(0, "sql");
          if (!sql) throw TemplateError(a.line, "run_query() needs a SQL string");
          auto r = run(sql->Str());
          if (!r.ok()) throw TemplateError(a.line, "run_query: " + r.message());
          return r->table;
        })));
  // {% call statement('name', fetch_result=True) %} stores here; load_result reads.
  auto results = std::make_shared<ValueDict>();
  g.Set("store_result", Value(Function([results](const Arguments& a) -> Value {
          const Value* name = a.Get(0, "name");
          if (!name) throw TemplateError(a.line, "store_result() needs a name");
          ValueDict r;
          const Value* response = a.Get(1, "response");
          const Value* table = a.Get(2, "agate_table");
          r.Set("response", response ? *response : Value());
          r.Set("table", table ? *table : Value());
          ValueList data;
          if (table && table->is_dict()) {
            if (const Value* rows = table->dict().Find("rows")) data = rows->list();
          }
          r.Set("data", Value(std::move(data)));
          results->Set(name->Str(), Value(std::move(r)));
          return Value("");
        })));
  g.Set("load_result", Value(Function([results](const Arguments& a) -> Value {
          const Value* name = a.Get(0, "name");
          if (!name) throw TemplateError(a.line, "load_result() needs a name");
          const Value* r = results->Find(name->Str());
          return r ? *r : Value();
        })));
  const nlohmann::json* vars = &project.VarsFor(node.package_name);
  nlohmann::json var_overrides = options.var_overrides;
  g.Set("var", Value(Function([vars, var_overrides](const Arguments& a) -> Value {
          const Value* name = a.Get(0, "name");
          if (!name || !name->is_string()) throw TemplateError(a.line, "var() needs a name");
          if (var_overrides.contains(name->as_string()))
            return JsonToValue(var_overrides[name->as_string()]);
          if (vars->contains(name->as_string())) return JsonToValue((*vars)[name->as_string()]);
          if (const Value* d = a.Get(1, "default")) return *d;
          throw TemplateError(a.line, fmt::format("required var '{}' not found (set it under "
                                                  "vars: in dbt_project.yml or with --vars)",
                                                  name->as_string()));
        })));
  EnvScope env_scope = options.env_scope;
  const std::set<std::string>* declared = &project.declared_env;
  std::map<std::string, std::string> env_overrides = options.env_overrides;
  g.Set("env_var",
        Value(Function([env_scope, declared, env_overrides](const Arguments& a) -> Value {
          const Value* name = a.Get(0, "var");
          if (!name || !name->is_string()) throw TemplateError(a.line, "env_var() needs a name");
          const std::string& n = name->as_string();
          if (auto it = env_overrides.find(n); it != env_overrides.end()) return Value(it->second);
          // Refused even with a default: a package probing for a secret is an error, as
          // in dbt, not a silent fallback.
          if (std::string refused = EnvVarRefusal(n, env_scope, *declared); !refused.empty()) {
            throw TemplateError(a.line, refused);
          }
          if (const char* v = std::getenv(n.c_str())) return Value(std::string(v));
          if (const Value* d = a.Get(1, "default")) return *d;
          throw TemplateError(a.line, fmt::format("env var required but not provided: '{}'", n));
        })));
  g.Set("target", TargetValue(project.target));
  g.Set("project_name", Value(project.name));
  g.Set("schema", Value(node.schema));
  g.Set("database", Value(node.database));
  g.Set("model", NodeValue(node));
  const SecretMask* secrets = &project.secrets;
  // The reporter scrubs secrets itself; stderr (no reporter) is scrubbed here.
  auto message = options.message ? options.message : [secrets](const std::string& text) {
    std::cerr << secrets->Scrub(text) << "\n";
  };
  auto warning = options.warning ? options.warning : [secrets](const std::string& text) {
    std::cerr << "warning: " << secrets->Scrub(text) << "\n";
  };
  g.Set("log", Value(Function([message](const Arguments& a) -> Value {
          const Value* info = a.Get(1, "info");
          if (info && info->Truthy() && !a.positional.empty()) message(a.positional[0].Str());
          return Value("");
        })));
  g.Set("print", Value(Function([message](const Arguments& a) -> Value {
          if (!a.positional.empty()) message(a.positional[0].Str());
          return Value("");
        })));
  ValueDict exceptions;
  exceptions.Set("raise_compiler_error", Value(Function([](const Arguments& a) -> Value {
                   throw TemplateError(
                       a.line, a.positional.empty() ? "compiler error" : a.positional[0].Str());
                 })));
  exceptions.Set("warn", Value(Function([warning](const Arguments& a) -> Value {
                   if (!a.positional.empty()) warning(a.positional[0].Str());
                   return Value("");
                 })));
  g.Set("exceptions", Value(std::move(exceptions)));
  Value adapter = AdapterValue(p, run, parse ? nullptr : options.adapter, parse);
  g.Set("load_relation", *adapter.dict().Find("load_relation"));
  g.Set("adapter", adapter);
  ValueDict relation_api;
  std::string database = project.target.database;
  relation_api.Set(
      "create",
      Value(Function([database](const Arguments& a) { return StringRelation(a, database); })));
  relation_api.Set("add_ephemeral_prefix", Value(Function([](const Arguments& a) {
                     return Value("__dbt__cte__" +
                                  (a.positional.empty() ? std::string() : a.positional[0].Str()));
                   })));
  ValueDict api;
  api.Set("Relation", Value(std::move(relation_api)));
  api.Set("Column", ColumnApi());
  g.Set("api", Value(std::move(api)));
  ValueDict flags;
  flags.Set("WHICH", Value(options.which));
  flags.Set("FULL_REFRESH", Value(options.full_refresh));
  flags.Set("STORE_FAILURES", Value(false));
  flags.Set("EMPTY", Value(false));
  flags.Set("WARN_ERROR", Value(false));
  g.Set("flags", Value(std::move(flags)));
  g.Set("invocation_id", Value(project.invocation_id));
  g.Set("run_started_at", project.run_started_at_value);
  ValueDict modules;
  modules.Set("re", ReModule());
  modules.Set("datetime", DatetimeModule());
  modules.Set("pytz", PytzModule());
  g.Set("modules", Value(std::move(modules)));
  g.Set("zip", Value(Function([](const Arguments& a) -> Value {
          ValueList out;
          size_t n = SIZE_MAX;
          for (const auto& l : a.positional) {
            if (!l.is_list()) throw TemplateError(a.line, "zip() takes lists");
            n = std::min(n, l.list().size());
          }
          if (a.positional.empty()) n = 0;
          for (size_t i = 0; i < n; ++i) {
            ValueList row;
            for (const auto& l : a.positional) row.push_back(l.list()[i]);
            out.emplace_back(std::move(row));
          }
          return Value(std::move(out));
        })));
  g.Set("tojson", Value(Function([](const Arguments& a) -> Value {
          if (a.positional.empty()) throw TemplateError(a.line, "tojson() needs a value");
          return Value(ValueToJson(a.positional[0]).dump());
        })));
  g.Set("fromjson", Value(Function([](const Arguments& a) -> Value {
          if (a.positional.empty()) throw TemplateError(a.line, "fromjson() needs a string");
          try {
            return JsonToValue(nlohmann::json::parse(a.positional[0].Str()));
          } catch (const nlohmann::json::exception& e) {
            const Value* d = a.Get(1, "default");
            if (d) return *d;
            throw TemplateError(a.line, fmt::format("fromjson: {}", e.what()));
          }
        })));
  // Python's set(), as a list of the distinct values in one canonical order, so that two
  // sets of the same values compare equal as Python's do.
  g.Set("set", Value(Function([](const Arguments& a) -> Value {
          ValueList out;
          if (!a.positional.empty() && a.positional[0].is_list()) {
            for (const auto& v : a.positional[0].list()) {
              if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
            }
          }
          std::stable_sort(out.begin(), out.end(),
                           [](const Value& x, const Value& y) { return x.Repr() < y.Repr(); });
          return Value(std::move(out));
        })));
  // A unit test's macro overrides: the name answers the given value. "<package>.<macro>"
  // overrides it in that package's namespace (the renderer reads such globals); dbt's own
  // macros answer both ways, dbt.name and name, and unqualified overrides win, as in dbt.
  for (int qualified = 1; qualified >= 0; --qualified) {
    for (const auto& [name, value] : options.macro_overrides) {
      size_t dot = name.find('.');
      if ((dot != std::string::npos) != (qualified == 1)) continue;
      Value answer(Function([value](const Arguments&) { return value; }));
      g.Set(name, answer);
      if (qualified && name.substr(0, dot) == jinja::Environment::kGlobalPackage) {
        g.Set(name.substr(dot + 1), answer);
      } else if (!qualified && project.env->HasMacro(jinja::Environment::kGlobalPackage, name)) {
        g.Set(std::string(jinja::Environment::kGlobalPackage) + "." + name, answer);
      }
    }
  }
  if (!parse) {
    g.Set("graph", *project.GraphValue());
  } else {
    ValueDict empty;
    empty.Set("nodes", Value(ValueDict{}));
    empty.Set("sources", Value(ValueDict{}));
    g.Set("graph", Value(std::move(empty)));
  }
  return g;
}

}  // namespace pdv::transform
