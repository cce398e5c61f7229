#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace pdv {

// A Brazilian taxpayer number (CPF) whose two check digits are valid.
class Cpf {
 public:
  // Accepts exactly 11 digits ("12345678909") or the formatted form
  // ("123.456.789-09"). Anything else is an error naming the problem: length,
  // a character that is not a digit (with its position), a misplaced separator, a
  // wrong check digit, or all digits the same. Pure, thread-safe.
  static Result<Cpf> Parse(std::string_view text);

  // Builds the CPF whose first nine digits are `base` (0..999'999'999), computing the
  // check digits. Fails for bases whose nine digits are all the same.
  static Result<Cpf> FromBase(uint32_t base);

  // The 11 digits, no separators: what cpf_hash is computed over.
  std::string digits() const { return std::string(digits_.data(), digits_.size()); }
  // "123.456.789-09".
  std::string formatted() const;

  friend bool operator==(const Cpf&, const Cpf&) = default;

 private:
  explicit Cpf(const std::array<char, 11>& digits) : digits_(digits) {}
  std::array<char, 11> digits_;
};

// The base (first nine digits) of the freshness probe's marker customer: reserved, the
// generator never issues it.
inline constexpr uint32_t kProbeCpfBase = 999'999'998;
// Its cliente_id: the generator does not count it as a customer (--only-if-empty).
inline constexpr char kProbeClienteId[] = "00000000-0000-4000-8000-0000000f5e5a";

// The two check digits for nine leading digits ('0'..'9'), as characters.
std::array<char, 2> CpfCheckDigits(std::string_view nine_digits);

}  // namespace pdv
