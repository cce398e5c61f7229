#include "common/cpf.h"

#include <fmt/format.h>

#include <algorithm>

namespace pdv {
namespace {

char CheckDigit(std::string_view digits, int first_weight) {
  int sum = 0;
  int weight = first_weight;
  for (char c : digits) sum += (c - '0') * weight--;
  int rest = (sum * 10) % 11;
  return static_cast<char>('0' + (rest == 10 ? 0 : rest));
}

bool IsFormattedSeparator(size_t pos, char c) {
  return ((pos == 3 || pos == 7) && c == '.') || (pos == 11 && c == '-');
}

}  // namespace

std::array<char, 2> CpfCheckDigits(std::string_view nine_digits) {
  char first = CheckDigit(nine_digits.substr(0, 9), 10);
  std::string ten(nine_digits.substr(0, 9));
  ten.push_back(first);
  return {first, CheckDigit(ten, 11)};
}

Result<Cpf> Cpf::Parse(std::string_view text) {
  std::array<char, 11> digits{};
  if (text.size() == 11) {
    for (size_t i = 0; i < 11; ++i) {
      if (text[i] < '0' || text[i] > '9') {
        return Status::Error(fmt::format("invalid CPF: character {} is not a digit", i + 1));
      }
      digits[i] = text[i];
    }
  } else if (text.size() == 14) {
    size_t n = 0;
    for (size_t i = 0; i < 14; ++i) {
      char c = text[i];
      bool separator_position = i == 3 || i == 7 || i == 11;
      if (separator_position) {
        if (!IsFormattedSeparator(i, c)) {
          return Status::Error(
              fmt::format("invalid CPF: character {} must be '{}' in the form 000.000.000-00",
                          i + 1, i == 11 ? '-' : '.'));
        }
        continue;
      }
      if (c < '0' || c > '9') {
        return Status::Error(fmt::format("invalid CPF: character {} is not a digit", i + 1));
      }
      digits[n++] = c;
    }
  } else {
    return Status::Error(fmt::format(
        "invalid CPF: expected 11 digits or 000.000.000-00 (14 characters), got {} characters",
        text.size()));
  }
  if (std::all_of(digits.begin(), digits.end(), [&](char c) { return c == digits[0]; })) {
    return Status::Error("invalid CPF: all digits are the same");
  }
  auto check = CpfCheckDigits(std::string_view(digits.data(), 9));
  if (check[0] != digits[9]) return Status::Error("invalid CPF: first check digit is wrong");
  if (check[1] != digits[10]) return Status::Error("invalid CPF: second check digit is wrong");
  return Cpf(digits);
}

Result<Cpf> Cpf::FromBase(uint32_t base) {
  if (base > 999'999'999u) return Status::Error("CPF base out of range");
  std::array<char, 11> digits{};
  for (int i = 8; i >= 0; --i) {
    digits[i] = static_cast<char>('0' + base % 10);
    base /= 10;
  }
  if (std::all_of(digits.begin(), digits.begin() + 9, [&](char c) { return c == digits[0]; })) {
    return Status::Error("CPF base has all digits the same");
  }
  auto check = CpfCheckDigits(std::string_view(digits.data(), 9));
  digits[9] = check[0];
  digits[10] = check[1];
  return Cpf(digits);
}

std::string Cpf::formatted() const {
  std::string_view d(digits_.data(), digits_.size());
  return fmt::format("{}.{}.{}-{}", d.substr(0, 3), d.substr(3, 3), d.substr(6, 3), d.substr(9, 2));
}

}  // namespace pdv
