#include "generate/customer_generator.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>

namespace pdv::generate {
namespace {

constexpr uint64_t kCpfSpace = 1'000'000'000;
// An affine permutation of the 9-digit CPF base space: the multiplier is coprime to
// 10^9, so distinct serials always give distinct CPFs, and neighbouring serials give
// unrelated-looking ones.
constexpr uint64_t kCpfMultiplier = 387'420'489;  // 3^18
constexpr uint64_t kCpfOffset = 123'456'789;

// One of `choices` (string literals, so the result outlives the call), drawn by weight.
const char* Weighted(Rng& rng, std::initializer_list<std::pair<const char*, int>> choices) {
  int total = 0;
  for (const auto& c : choices) total += c.second;
  int pick = static_cast<int>(rng.Below(static_cast<uint64_t>(total)));
  for (const auto& c : choices) {
    if (pick < c.second) return c.first;
    pick -= c.second;
  }
  return choices.begin()->first;
}

const std::string& Pick(Rng& rng, const std::vector<std::string>& list) {
  return list[rng.Below(list.size())];
}

int32_t DaysOf(int64_t us) {
  return static_cast<int32_t>(std::floor(static_cast<double>(us) / 86'400'000'000.0));
}

// The date `years` before `day`, Feb 29 becoming Feb 28.
int32_t YearsBefore(int32_t day, int years) {
  using namespace std::chrono;
  year_month_day ymd{sys_days{days{day}}};
  year_month_day back{ymd.year() - std::chrono::years{years}, ymd.month(), ymd.day()};
  if (!back.ok()) back = year_month_day{back.year(), back.month(), std::chrono::day{28}};
  return static_cast<int32_t>(sys_days{back}.time_since_epoch().count());
}

}  // namespace

std::string AsciiLower(std::string_view utf8) {
  // Latin-1 supplement letters U+00C0..U+00FF, lower-cased and stripped of accents.
  static constexpr char kFold[] =
      "aaaaaaaceeeeiiiidnooooo*ouuuuyts"   // C0-DF
      "aaaaaaaceeeeiiiidnooooo/ouuuuyty";  // E0-FF
  std::string out;
  for (size_t i = 0; i < utf8.size(); ++i) {
    auto c = static_cast<unsigned char>(utf8[i]);
    if (c < 0x80) {
      if (std::isalpha(c)) out.push_back(static_cast<char>(std::tolower(c)));
      continue;
    }
    if ((c == 0xC3) && i + 1 < utf8.size()) {
      unsigned cp = 0xC0 + (static_cast<unsigned char>(utf8[i + 1]) & 0x3F);
      char folded = kFold[cp - 0xC0];
      if (std::isalpha(static_cast<unsigned char>(folded))) out.push_back(folded);
      ++i;
    }
  }
  return out;
}

CustomerGenerator::CustomerGenerator(const ReferenceData& data, uint64_t seed,
                                     std::string_view cpf_key)
    : data_(data), seed_(seed), hasher_(cpf_key) {}

std::optional<Cpf> CustomerGenerator::CpfFor(uint64_t serial) {
  uint64_t base = (serial % kCpfSpace * kCpfMultiplier + kCpfOffset) % kCpfSpace;
  if (base == kProbeCpfBase) return std::nullopt;
  auto cpf = Cpf::FromBase(static_cast<uint32_t>(base));
  if (!cpf.ok()) return std::nullopt;
  return *cpf;
}

const City& CustomerGenerator::PickCity(Rng& rng) const {
  int pick =
      static_cast<int>(rng.Below(static_cast<uint64_t>(data_.city_cumulative_weight.back())));
  auto it = std::upper_bound(data_.city_cumulative_weight.begin(),
                             data_.city_cumulative_weight.end(), pick);
  return data_.cities[static_cast<size_t>(it - data_.city_cumulative_weight.begin())];
}

std::string CustomerGenerator::Phone(Rng& rng, int ddd) const {
  // Mobile numbers: nine digits starting with 9.
  return fmt::format("({}) 9{:04d}-{:04d}", ddd, rng.Between(1000, 9999), rng.Between(0, 9999));
}

std::string CustomerGenerator::Cep(Rng& rng, const City& city) const {
  int cep = static_cast<int>(rng.Between(city.cep_min, city.cep_max));
  return fmt::format("{:05d}-{:03d}", cep / 1000, cep % 1000);
}

int64_t CustomerGenerator::TicketCents(Rng& rng) const {
  // Log-normal around R$ 75, right-skewed, redrawn until inside R$ 20-300.
  for (int i = 0; i < 64; ++i) {
    double brl = 75.0 * std::exp(0.55 * rng.Normal());
    if (brl >= 20.0 && brl <= 300.0) return std::llround(brl * 100.0);
  }
  return 7500;
}

std::optional<Customer> CustomerGenerator::Make(uint64_t serial, int64_t as_of_us,
                                                bool new_signup) const {
  auto cpf = CpfFor(serial);
  if (!cpf) return std::nullopt;
  Rng rng = Rng::For(seed_, serial);
  Customer c{.serial = serial, .cpf = *cpf};
  c.cpf_hash = hasher_.Hash(*cpf);

  uint64_t hi = rng.Next(), lo = rng.Next();
  for (int i = 0; i < 8; ++i) {
    c.cliente_id[i] = static_cast<uint8_t>(hi >> (56 - 8 * i));
    c.cliente_id[8 + i] = static_cast<uint8_t>(lo >> (56 - 8 * i));
  }
  c.cliente_id[6] = static_cast<uint8_t>((c.cliente_id[6] & 0x0F) | 0x40);  // version 4
  c.cliente_id[8] = static_cast<uint8_t>((c.cliente_id[8] & 0x3F) | 0x80);  // RFC 4122

  bool female = rng.Chance(0.51);
  // One char, not assign(const char*): GCC 12 at -O3 reports a false -Wrestrict there.
  c.sexo.assign(1, female ? 'F' : 'M');
  c.primeiro_nome = Pick(rng, female ? data_.female_names : data_.male_names);
  const std::string& middle = Pick(rng, data_.surnames);
  const std::string& last = Pick(rng, data_.surnames);
  bool two_surnames = rng.Chance(0.7) && middle != last;
  c.nome_completo = two_surnames ? fmt::format("{} {} {}", c.primeiro_nome, middle, last)
                                 : fmt::format("{} {}", c.primeiro_nome, last);

  // The serial's digits end the local part; names have no digits, so the address is
  // unique whatever the name part.
  std::string first = AsciiLower(c.primeiro_nome), family = AsciiLower(last);
  // Separator between first and family name; "initial" abbreviates the first name.
  std::string_view style = Weighted(rng, {{".", 50}, {"", 20}, {"_", 15}, {"initial", 15}});
  std::string local = style == "initial" ? fmt::format("{}{}", first.substr(0, 1), family)
                                         : fmt::format("{}{}{}", first, style, family);
  const char* domain = Weighted(rng, {{"gmail.com", 45},
                                      {"hotmail.com", 20},
                                      {"outlook.com", 10},
                                      {"yahoo.com.br", 10},
                                      {"uol.com.br", 5},
                                      {"bol.com.br", 5},
                                      {"icloud.com", 5}});
  c.email = fmt::format("{}{}@{}", local, serial, domain);

  const City& city = PickCity(rng);
  c.cidade = city.name;
  c.estado = city.uf;
  c.cep = Cep(rng, city);
  c.telefone = Phone(rng, city.ddd);

  int age = static_cast<int>(rng.Between(18, 80));
  c.data_nascimento =
      YearsBefore(DaysOf(as_of_us), age) - static_cast<int32_t>(rng.Between(0, 364));

  c.canal_cadastro = Weighted(rng, {{"loja", 50}, {"app", 35}, {"site", 15}});

  constexpr int64_t kThreeYearsUs = int64_t{3} * 365 * 86'400'000'000;
  if (new_signup) {
    c.data_cadastro_us = as_of_us;
    c.ultima_atualizacao_us = as_of_us;
  } else {
    // More recent sign-ups are more common (the club grows).
    double back = 1.0 - std::sqrt(rng.Unit());
    c.data_cadastro_us = as_of_us - static_cast<int64_t>(back * kThreeYearsUs);
    c.ultima_atualizacao_us =
        rng.Chance(0.5) ? c.data_cadastro_us
                        : c.data_cadastro_us +
                              static_cast<int64_t>(rng.Unit() * (as_of_us - c.data_cadastro_us));
  }

  c.status_clube = rng.Chance(0.85) ? "ATIVO" : "INATIVO";
  c.opt_in_marketing = rng.Chance(0.7);
  c.ticket_medio_centavos = TicketCents(rng);
  c.origem_campanha = Weighted(rng, {{"organico", 30},
                                     {"black_friday", 15},
                                     {"verao", 12},
                                     {"natal", 12},
                                     {"dia_das_maes", 10},
                                     {"inverno", 8},
                                     {"dia_dos_pais", 7},
                                     {"volta_as_aulas", 6}});
  return c;
}

}  // namespace pdv::generate
