#include "generate/copy_encoder.h"

#include <cstdint>

namespace pdv::generate {

const char kCopyColumns[] =
    "cliente_id, cpf_hash, nome_completo, email, telefone, data_nascimento, sexo, cidade, "
    "estado, cep, canal_cadastro, data_cadastro, ultima_atualizacao, status_clube, "
    "opt_in_marketing, ticket_medio_estimado, origem_campanha";

namespace {

constexpr int16_t kColumnCount = 17;
// PostgreSQL's epoch for date and timestamp is 2000-01-01.
constexpr int32_t kPgEpochDays = 10957;
constexpr int64_t kPgEpochUs = int64_t{kPgEpochDays} * 86'400'000'000;

void Put16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v));
}
void Put32(std::string* out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out->push_back(static_cast<char>(v >> s));
}
void Put64(std::string* out, uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) out->push_back(static_cast<char>(v >> s));
}
void PutText(std::string* out, std::string_view text) {
  Put32(out, static_cast<uint32_t>(text.size()));
  out->append(text);
}

// numeric's binary form: base-10000 digits with weight, sign and display scale.
void PutNumericCents(std::string* out, int64_t cents) {
  uint64_t abs = cents < 0 ? static_cast<uint64_t>(-cents) : static_cast<uint64_t>(cents);
  uint64_t whole = abs / 100;
  uint16_t frac = static_cast<uint16_t>((abs % 100) * 100);
  uint16_t groups[8];
  int n = 0;
  uint16_t reversed[6];
  int whole_groups = 0;
  for (uint64_t x = whole; x > 0; x /= 10000) {
    reversed[whole_groups++] = static_cast<uint16_t>(x % 10000);
  }
  for (int i = whole_groups - 1; i >= 0; --i) groups[n++] = reversed[i];
  // Weight: the power of 10000 of the first group (-1 when the value is below 1).
  int16_t weight = static_cast<int16_t>(whole_groups - 1);
  if (frac != 0) groups[n++] = frac;
  while (n > 0 && groups[n - 1] == 0) --n;  // trailing zero groups are implied
  Put32(out, static_cast<uint32_t>(8 + 2 * n));
  Put16(out, static_cast<uint16_t>(n));
  Put16(out, static_cast<uint16_t>(n == 0 ? 0 : weight));
  Put16(out, cents < 0 ? 0x4000 : 0x0000);
  Put16(out, 2);  // dscale: numeric(10,2)
  for (int i = 0; i < n; ++i) Put16(out, groups[i]);
}

}  // namespace

std::string CopyEncoder::Header() {
  std::string h("PGCOPY\n\xff\r\n\0", 11);
  Put32(&h, 0);  // flags
  Put32(&h, 0);  // header extension length
  return h;
}

std::string CopyEncoder::Trailer() {
  std::string t;
  Put16(&t, 0xFFFF);
  return t;
}

void CopyEncoder::Append(const Customer& c, std::string* out) {
  Put16(out, kColumnCount);
  Put32(out, 16);
  out->append(reinterpret_cast<const char*>(c.cliente_id.data()), 16);
  PutText(out, c.cpf_hash);
  PutText(out, c.nome_completo);
  PutText(out, c.email);
  PutText(out, c.telefone);
  Put32(out, 4);
  Put32(out, static_cast<uint32_t>(c.data_nascimento - kPgEpochDays));
  PutText(out, c.sexo);
  PutText(out, c.cidade);
  PutText(out, c.estado);
  PutText(out, c.cep);
  PutText(out, c.canal_cadastro);
  Put32(out, 8);
  Put64(out, static_cast<uint64_t>(c.data_cadastro_us - kPgEpochUs));
  Put32(out, 8);
  Put64(out, static_cast<uint64_t>(c.ultima_atualizacao_us - kPgEpochUs));
  PutText(out, c.status_clube);
  Put32(out, 1);
  out->push_back(c.opt_in_marketing ? 1 : 0);
  PutNumericCents(out, c.ticket_medio_centavos);
  PutText(out, c.origem_campanha);
}

}  // namespace pdv::generate
