#include "generate/oltp_schema.h"

#include <fmt/format.h>

#include <map>

namespace pdv::generate {
namespace {

// cpf_hash (hex) and email are unique under byte order (COLLATE "C"): equality is the
// same under any deterministic collation, and building or updating their indexes
// compares bytes instead of calling the locale's strcoll (at 20M customers, most of an
// initial load's time went to rebuilding these two indexes).
constexpr char kCreateTable[] = R"sql(
CREATE TABLE IF NOT EXISTS public.clientes_clube (
  cliente_id            uuid PRIMARY KEY,
  cpf_hash              text COLLATE "C" NOT NULL UNIQUE,
  nome_completo         text NOT NULL,
  email                 text COLLATE "C" NOT NULL UNIQUE,
  telefone              text,
  data_nascimento       date,
  sexo                  text,
  cidade                text,
  estado                text,
  cep                   text,
  canal_cadastro        text NOT NULL CHECK (canal_cadastro IN ('loja', 'app', 'site')),
  data_cadastro         timestamp NOT NULL,
  ultima_atualizacao    timestamp NOT NULL,
  status_clube          text NOT NULL CHECK (status_clube IN ('ATIVO', 'INATIVO')),
  opt_in_marketing      boolean NOT NULL,
  ticket_medio_estimado numeric(10, 2),
  origem_campanha       text
))sql";

// The generator's own bookkeeping; not part of the contract and not published.
constexpr char kCreateState[] = R"sql(
CREATE TABLE IF NOT EXISTS public.pdv_generate_state (
  id          int PRIMARY KEY CHECK (id = 1),
  next_serial bigint NOT NULL
);
INSERT INTO public.pdv_generate_state VALUES (1, 1) ON CONFLICT (id) DO NOTHING)sql";

struct ContractColumn {
  const char* name;
  const char* type;  // information_schema.columns.data_type
};
constexpr ContractColumn kContract[] = {
    {"cliente_id", "uuid"},
    {"cpf_hash", "text"},
    {"nome_completo", "text"},
    {"email", "text"},
    {"telefone", "text"},
    {"data_nascimento", "date"},
    {"sexo", "text"},
    {"cidade", "text"},
    {"estado", "text"},
    {"cep", "text"},
    {"canal_cadastro", "text"},
    {"data_cadastro", "timestamp without time zone"},
    {"ultima_atualizacao", "timestamp without time zone"},
    {"status_clube", "text"},
    {"opt_in_marketing", "boolean"},
    {"ticket_medio_estimado", "numeric"},
    {"origem_campanha", "text"},
};

}  // namespace

pdv::Result<std::vector<std::string>> OltpSchemaDifferences(pg::Connection& conn) {
  std::vector<std::string> diffs;
  auto cols = conn.Exec(
      "SELECT column_name, data_type FROM information_schema.columns "
      "WHERE table_schema = 'public' AND table_name = 'clientes_clube'");
  if (!cols.ok()) return cols.status();
  if (cols->rows() == 0) return diffs;
  std::map<std::string, std::string> actual;
  for (int r = 0; r < cols->rows(); ++r) actual[cols->str(r, 0)] = cols->str(r, 1);
  for (const auto& c : kContract) {
    auto it = actual.find(c.name);
    if (it == actual.end()) {
      diffs.push_back(fmt::format("column {} is missing (the contract says {})", c.name, c.type));
    } else if (it->second != c.type) {
      diffs.push_back(
          fmt::format("column {} is {}, the contract says {}", c.name, it->second, c.type));
    }
  }

  // Keys: the primary key and the two unique columns, each on exactly that column.
  auto keys = conn.Exec(R"sql(
    SELECT i.indisprimary, i.indisunique, string_agg(a.attname, ',' ORDER BY k.ord)
    FROM pg_index i
    CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    WHERE i.indrelid = 'public.clientes_clube'::regclass AND i.indpred IS NULL
    GROUP BY i.indexrelid, i.indisprimary, i.indisunique)sql");
  if (!keys.ok()) return keys.status();
  bool pk = false, cpf_unique = false, email_unique = false;
  for (int r = 0; r < keys->rows(); ++r) {
    bool primary = keys->get(r, 0) == "t", unique = keys->get(r, 1) == "t";
    std::string_view columns = keys->get(r, 2);
    if (primary && columns == "cliente_id") pk = true;
    if (unique && columns == "cpf_hash") cpf_unique = true;
    if (unique && columns == "email") email_unique = true;
  }
  if (!pk) diffs.push_back("cliente_id is not the primary key");
  if (!cpf_unique) diffs.push_back("cpf_hash is not unique");
  if (!email_unique) diffs.push_back("email is not unique");
  return diffs;
}

Status EnsureOltpSchema(pg::Connection& conn) {
  // Serialise concurrent generators creating the schema.
  auto txn = pg::Transaction::Begin(conn);
  if (!txn.ok()) return txn.status();
  if (auto r = conn.Exec("SELECT pg_advisory_xact_lock(727001)"); !r.ok()) return r.status();

  auto diffs = OltpSchemaDifferences(conn);
  if (!diffs.ok()) return diffs.status();
  if (!diffs->empty()) {
    return Status::Error(fmt::format(
        "OLTP table public.clientes_clube differs from the data contract and was not changed: "
        "{}",
        fmt::join(*diffs, "; ")));
  }
  // Only what is missing is created: a generator without CREATE on the schema (pdv up
  // gives each stage its own role) runs against tables made for it.
  auto present = conn.Exec(
      "SELECT to_regclass('public.clientes_clube') IS NOT NULL AND "
      "to_regclass('public.pdv_generate_state') IS NOT NULL");
  if (!present.ok()) return present.status();
  if (present->get(0, 0) != "t") {
    for (const char* sql : {kCreateTable, kCreateState}) {
      if (auto r = conn.Exec(sql); !r.ok()) return r.status();
    }
  }

  auto pub = conn.Exec(
      fmt::format("SELECT pubinsert AND pubupdate AND pubdelete AND pubtruncate, "
                  "EXISTS (SELECT 1 FROM pg_publication_tables t WHERE t.pubname = p.pubname "
                  "AND t.schemaname = 'public' AND t.tablename = 'clientes_clube') "
                  "FROM pg_publication p WHERE p.pubname = '{}'",
                  kPublication));
  if (!pub.ok()) return pub.status();
  if (pub->rows() == 0) {
    auto created = conn.Exec(
        fmt::format("CREATE PUBLICATION {} FOR TABLE public.clientes_clube", kPublication));
    if (!created.ok()) return created.status();
  } else if (pub->get(0, 0) != "t" || pub->get(0, 1) != "t") {
    return Status::Error(
        fmt::format("publication {} exists but {}: the CDC stage needs every change of "
                    "public.clientes_clube (ALTER PUBLICATION {} ADD TABLE public.clientes_clube; "
                    "SET (publish = 'insert, update, delete, truncate'))",
                    kPublication,
                    pub->get(0, 1) != "t" ? "does not include public.clientes_clube"
                                          : "does not publish every kind of change",
                    kPublication));
  }
  return txn->Commit();
}

pdv::Result<uint64_t> ReserveSerials(pg::Connection& conn, uint64_t count) {
  auto r = conn.Exec(fmt::format(
      "UPDATE public.pdv_generate_state SET next_serial = next_serial + {} WHERE id = 1 "
      "RETURNING next_serial - {}",
      count, count));
  if (!r.ok()) return r.status();
  if (r->rows() != 1) return Status::Error("pdv_generate_state has no row: run the schema setup");
  return static_cast<uint64_t>(std::stoull(r->str(0, 0)));
}

}  // namespace pdv::generate
