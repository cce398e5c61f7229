#pragma once

// The POS dimension that bench/api and bench/cache load: `customers` customers with real
// CPFs (their HMAC under `cpf_key`), every 7th INATIVO, every 5th without opt-in.

#include <fmt/format.h>

#include <string>
#include <vector>

#include "bench/bench_support.h"
#include "common/cpf.h"
#include "common/cpf_hasher.h"
#include "pg/connection.h"

namespace pdv::bench {

struct DimensionFixture {
  std::vector<std::string> cpfs;  // 11 digits
  std::vector<std::string> ids;   // UUID text, same order
};

inline DimensionFixture FillDimension(pg::Connection& conn, int customers,
                                      const std::string& cpf_key) {
  Must(conn.Exec("CREATE SCHEMA IF NOT EXISTS marts; CREATE TABLE marts.dim_clientes_clube "
                 "(cliente_id uuid PRIMARY KEY, cpf_hash text NOT NULL, primeiro_nome text, "
                 "status_clube text, opt_in_marketing boolean, ticket_medio_estimado "
                 "numeric(10,2), origem_campanha text, elegivel_a_partir_de timestamptz, "
                 "atualizado_em timestamptz, _lsn pg_lsn NOT NULL, _deleted boolean NOT NULL "
                 "DEFAULT false)")
           .status(),
       "dimension");
  CpfHasher hasher(cpf_key);
  DimensionFixture out;
  std::string copy;
  for (uint32_t s = 1; static_cast<int>(out.cpfs.size()) < customers; ++s) {
    auto cpf =
        Cpf::FromBase(static_cast<uint32_t>((uint64_t{s} * 387'420'489 + 7) % 1'000'000'000));
    if (!cpf.ok()) continue;
    std::string id = fmt::format("{:08x}-0000-4000-8000-{:012x}", s, s);
    out.cpfs.push_back(cpf->digits());
    out.ids.push_back(id);
    copy += fmt::format(
        "{}\t{}\tMaria\t{}\t{}\t87.50\tblack_friday\t2025-01-01 00:00:00+00\t"
        "2025-06-01 00:00:00+00\t0/{:X}\tf\n",
        id, hasher.Hash(*cpf), s % 7 ? "ATIVO" : "INATIVO", s % 5 ? "t" : "f", 0x1000 + s);
  }
  Must(conn.CopyBegin("COPY marts.dim_clientes_clube FROM STDIN"), "copy");
  Must(conn.CopyPut(copy), "copy");
  Must(conn.CopyEnd(), "copy");
  return out;
}

}  // namespace pdv::bench
