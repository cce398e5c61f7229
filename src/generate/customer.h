#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "common/cpf.h"
#include "common/time_text.h"

namespace pdv::generate {

// One row of clientes_clube, plus the plaintext CPF (never stored; only written to
// --cpf-out for test clients). Times are microseconds since the Unix epoch, UTC.
struct Customer {
  uint64_t serial = 0;                   // the generator's number for this customer
  std::array<uint8_t, 16> cliente_id{};  // UUID v4
  Cpf cpf;
  std::string cpf_hash;
  std::string nome_completo;
  std::string primeiro_nome;
  std::string email;
  std::string telefone;
  int32_t data_nascimento = 0;  // days since 1970-01-01
  std::string sexo;             // "F" | "M"
  std::string cidade;
  std::string estado;
  std::string cep;  // "01310-100"
  std::string canal_cadastro;
  int64_t data_cadastro_us = 0;
  int64_t ultima_atualizacao_us = 0;
  std::string status_clube;
  bool opt_in_marketing = false;
  int64_t ticket_medio_centavos = 0;  // numeric(10,2) in cents
  std::string origem_campanha;
};

// "8-4-4-4-12" lowercase.
std::string UuidText(const std::array<uint8_t, 16>& id);
// "123.45".
std::string CentsText(int64_t cents);
using pdv::DateText;
using pdv::TimestampText;

}  // namespace pdv::generate
