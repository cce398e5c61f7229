// Runs the API fuzz target over mutations of typical requests, from a fixed seed.

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main() {
  const std::vector<std::string> seeds = {
      "GET /v1/clientes/529.982.247-25",
      "GET /v1/clientes/52998224725",
      "GET /cliente/11111111-2222-4333-8444-555555555555/status",
      "POST /health",
      "GET /metrics?x=1",
      "GET /v1/clientes/",
      "GET /cliente//status"};
  uint64_t state = 0xA11CE;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  };
  const long iterations = 500000;
  for (long i = 0; i < iterations; ++i) {
    std::string m = seeds[next() % seeds.size()];
    for (int e = 0, edits = 1 + static_cast<int>(next() % 4); e < edits && !m.empty(); ++e) {
      switch (next() % 4) {
        case 0:
          m.resize(next() % m.size());
          break;
        case 1:
          m[next() % m.size()] = static_cast<char>(next());
          break;
        case 2:
          m.insert(next() % m.size(), 1, "./-0123456789?%"[next() % 15]);
          break;
        case 3:
          m += seeds[next() % seeds.size()].substr(next() % 10);
          break;
      }
    }
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(m.data()), m.size());
  }
  std::printf("%ld mutated requests handled without a fault\n", iterations);
  return 0;
}
