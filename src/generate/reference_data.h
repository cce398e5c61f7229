#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace pdv::generate {

struct City {
  std::string name;
  std::string uf;
  int ddd;      // area code
  int weight;   // relative share of customers
  int cep_min;  // the UF's CEP range, as 8-digit numbers
  int cep_max;
};

// The name and place lists the generator draws from (the data/*.txt|csv files shipped
// in the repository, embedded in the binary). Immutable once loaded; thread-safe.
struct ReferenceData {
  std::vector<std::string> female_names;
  std::vector<std::string> male_names;
  std::vector<std::string> surnames;
  std::vector<City> cities;
  std::vector<int> city_cumulative_weight;  // for weighted draws

  // Parses the embedded files; an error names the file and line.
  static Result<ReferenceData> Load();
};

}  // namespace pdv::generate
