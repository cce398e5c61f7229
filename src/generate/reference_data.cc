#include "generate/reference_data.h"

#include <fmt/format.h>

#include <charconv>
#include <map>
#include <sstream>

namespace pdv::generate {

std::string_view Embedded(std::string_view name);  // generated from data/

namespace {

std::vector<std::string> Lines(std::string_view text) {
  std::vector<std::string> out;
  std::string line;
  std::istringstream in{std::string(text)};
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.push_back(line);
  }
  return out;
}

std::vector<std::string> Split(const std::string& line) {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, ',')) out.push_back(field);
  return out;
}

bool ToInt(const std::string& s, int* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

Result<std::vector<std::string>> NameList(std::string_view file) {
  std::vector<std::string> names;
  for (auto& line : Lines(Embedded(file))) {
    if (!line.empty()) names.push_back(line);
  }
  if (names.empty()) return Status::Error(fmt::format("generate data {}: empty", file));
  return names;
}

}  // namespace

Result<ReferenceData> ReferenceData::Load() {
  ReferenceData data;
  for (auto [file, list] : {std::pair{"nomes_femininos.txt", &data.female_names},
                            std::pair{"nomes_masculinos.txt", &data.male_names},
                            std::pair{"sobrenomes.txt", &data.surnames}}) {
    auto names = NameList(file);
    if (!names.ok()) return names.status();
    *list = std::move(*names);
  }

  std::map<std::string, std::pair<int, int>> ceps;
  auto uf_lines = Lines(Embedded("ufs.csv"));
  for (size_t i = 1; i < uf_lines.size(); ++i) {
    if (uf_lines[i].empty()) continue;
    auto f = Split(uf_lines[i]);
    int lo = 0, hi = 0;
    if (f.size() != 3 || !ToInt(f[1], &lo) || !ToInt(f[2], &hi) || lo > hi) {
      return Status::Error(
          fmt::format("generate data ufs.csv:{}: expected uf,cep_min,cep_max", i + 1));
    }
    ceps[f[0]] = {lo, hi};
  }

  auto city_lines = Lines(Embedded("cidades.csv"));
  int total = 0;
  for (size_t i = 1; i < city_lines.size(); ++i) {
    if (city_lines[i].empty()) continue;
    auto f = Split(city_lines[i]);
    City c;
    if (f.size() != 4 || !ToInt(f[2], &c.ddd) || !ToInt(f[3], &c.weight) || c.ddd < 11 ||
        c.ddd > 99 || c.weight <= 0) {
      return Status::Error(
          fmt::format("generate data cidades.csv:{}: expected cidade,uf,ddd,peso", i + 1));
    }
    auto range = ceps.find(f[1]);
    if (range == ceps.end()) {
      return Status::Error(
          fmt::format("generate data cidades.csv:{}: UF {} not in ufs.csv", i + 1, f[1]));
    }
    c.name = f[0];
    c.uf = f[1];
    c.cep_min = range->second.first;
    c.cep_max = range->second.second;
    total += c.weight;
    data.cities.push_back(c);
    data.city_cumulative_weight.push_back(total);
  }
  if (data.cities.empty()) return Status::Error("generate data cidades.csv: no cities");
  return data;
}

}  // namespace pdv::generate
