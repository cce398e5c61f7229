#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/cpf_hasher.h"
#include "generate/customer.h"
#include "generate/reference_data.h"
#include "generate/rng.h"

namespace pdv::generate {

// Makes realistic customers deterministically: customer `serial` under `seed` is always
// the same person. CPFs and e-mails are unique by construction (both are injective
// functions of the serial, whatever the seed), so any number of generators sharing a
// serial sequence never collide. Not thread-safe (owns an HMAC context): one per thread.
class CustomerGenerator {
 public:
  CustomerGenerator(const ReferenceData& data, uint64_t seed, std::string_view cpf_key);

  // The customer numbered `serial`, signed up before `as_of_us` (initial load: spread
  // over the three years before; `new_signup`: exactly at as_of_us). nullopt for the
  // few serials whose CPF would have all digits the same: skip those.
  std::optional<Customer> Make(uint64_t serial, int64_t as_of_us, bool new_signup) const;

  // Pieces the workload reuses for updates.
  const City& PickCity(Rng& rng) const;
  std::string Phone(Rng& rng, int ddd) const;
  std::string Cep(Rng& rng, const City& city) const;
  int64_t TicketCents(Rng& rng) const;

  // The CPF of `serial`, or nullopt (see Make).
  static std::optional<Cpf> CpfFor(uint64_t serial);

  uint64_t seed() const { return seed_; }

 private:
  const ReferenceData& data_;
  uint64_t seed_;
  CpfHasher hasher_;
};

// Lowercase ASCII of a Portuguese name, accents removed ("Antônia" -> "antonia").
std::string AsciiLower(std::string_view utf8);

}  // namespace pdv::generate
