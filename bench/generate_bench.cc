// bench/generate: how fast `pdv generate --initial` loads customers into a fresh
// PostgreSQL, side by side with the original platform's way (one INSERT statement per
// row, each a round trip, in one transaction), in one run on this machine.

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stop_token>
#include <string>
#include <vector>

#include "bench/bench_support.h"
#include "generate/bulk_loader.h"
#include "generate/customer_generator.h"
#include "generate/oltp_schema.h"
#include "generate/reference_data.h"
#include "localsvc/local_postgres.h"
#include "pg/connection.h"

namespace {

using pdv::bench::Die;
using pdv::bench::Must;
using pdv::bench::Percentile;

using Clock = std::chrono::steady_clock;
constexpr char kKey[] = "benchmark-cpf-key-0123";

pdv::pg::Connection FreshDatabase(pdv::localsvc::LocalPostgres& pg, const std::string& name) {
  Must(pg.CreateDatabase(name), "create database");
  auto conn = Must(pdv::pg::Connection::Connect(pg.Url(name)), "connect");
  Must(pdv::generate::EnsureOltpSchema(conn), "schema");
  return conn;
}

// The original platform's loader: one INSERT per row, each a round trip, one transaction.
double InsertPerRow(pdv::pg::Connection& conn, const pdv::generate::ReferenceData& data,
                    uint64_t rows, int64_t as_of) {
  pdv::generate::CustomerGenerator gen(data, 1, kKey);
  std::vector<pdv::generate::Customer> customers;
  for (uint64_t s = 1; customers.size() < rows; ++s) {
    if (auto c = gen.Make(s, as_of, false)) customers.push_back(std::move(*c));
  }
  auto start = Clock::now();
  Must(conn.Exec("BEGIN").status(), "begin");
  for (const auto& c : customers) {
    using pdv::generate::CentsText, pdv::generate::DateText, pdv::generate::TimestampText,
        pdv::generate::UuidText;
    auto r = conn.ExecParams(
        "INSERT INTO clientes_clube (cliente_id, cpf_hash, nome_completo, email, telefone, "
        "data_nascimento, sexo, cidade, estado, cep, canal_cadastro, data_cadastro, "
        "ultima_atualizacao, status_clube, opt_in_marketing, ticket_medio_estimado, "
        "origem_campanha) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17)",
        {UuidText(c.cliente_id), c.cpf_hash, c.nome_completo, c.email, c.telefone,
         DateText(c.data_nascimento), c.sexo, c.cidade, c.estado, c.cep, c.canal_cadastro,
         TimestampText(c.data_cadastro_us), TimestampText(c.ultima_atualizacao_us), c.status_clube,
         c.opt_in_marketing ? "true" : "false", CentsText(c.ticket_medio_centavos),
         c.origem_campanha});
    Must(r.status(), "insert");
  }
  Must(conn.Exec("COMMIT").status(), "commit");
  return rows / std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t rows = 1'000'000, reference_rows = 20'000;
  int runs = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--rows"))
      rows = std::stoull(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--reference-rows"))
      reference_rows = std::stoull(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--runs"))
      runs = std::stoi(argv[i + 1]);
    else
      Die(fmt::format("unknown option {} (--rows N --reference-rows N --runs N)", argv[i]));
  }
  auto data = Must(pdv::generate::ReferenceData::Load(), "reference data");
  auto pg = Must(pdv::localsvc::LocalPostgres::Start({}), "start postgres");
  int64_t as_of = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  fmt::print(
      "bench/generate: {} customers into a fresh clientes_clube (primary key + 2 unique "
      "keys), {} runs, PostgreSQL on 127.0.0.1:{} (fsync off)\n",
      rows, runs, pg->port());

  std::vector<double> ours;
  for (int run = 0; run < runs; ++run) {
    auto conn = FreshDatabase(*pg, fmt::format("bulk_{}", run));
    pdv::generate::BulkLoadOptions options{
        .count = rows, .seed = 1, .cpf_key = kKey, .as_of_us = as_of, .threads = 2};
    auto result = Must(pdv::generate::BulkLoad(conn, data, options, std::stop_token()), "load");
    double rate = result.rows / result.seconds;
    ours.push_back(rate);
    fmt::print(
        "  run {}: pdv generate --initial: {} rows in {:.2f} s = {:.0f} rows/s "
        "(keys rebuilt in {:.2f} s)\n",
        run + 1, result.rows, result.seconds, rate, result.keys_seconds);
  }

  std::vector<double> reference;
  for (int run = 0; run < runs; ++run) {
    auto conn = FreshDatabase(*pg, fmt::format("reference_{}", run));
    double rate = InsertPerRow(conn, data, reference_rows, as_of);
    reference.push_back(rate);
    fmt::print("  run {}: one INSERT per row (original platform): {} rows = {:.0f} rows/s\n",
               run + 1, reference_rows, rate);
  }

  double ours_median = Percentile(ours, 0.5), reference_median = Percentile(reference, 0.5);
  fmt::print("pdv generate --initial        median {:>9.0f} rows/s  (target >= 100000)\n",
             ours_median);
  fmt::print("one INSERT per row, 1 txn     median {:>9.0f} rows/s\n", reference_median);
  fmt::print("ratio                                {:>9.1f}x      (target >= 10x)\n",
             ours_median / reference_median);
  return 0;
}
