// Runs the fuzz target over mutations of the captured golden messages: truncations,
// bit flips, byte insertions and splices, from a fixed seed so runs are repeatable.
// Built with AddressSanitizer and UBSan: a bad read fails the test.

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s GOLDEN.hex... [--iterations N]\n", argv[0]);
    return 2;
  }
  long iterations = 300000;
  std::vector<std::string> corpus;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--iterations" && i + 1 < argc) {
      iterations = std::stol(argv[++i]);
      continue;
    }
    std::ifstream in(arg);
    for (std::string lsn, hex; in >> lsn >> hex;) {
      std::string bytes;
      for (size_t k = 0; k + 1 < hex.size(); k += 2) {
        bytes.push_back(static_cast<char>(std::stoi(hex.substr(k, 2), nullptr, 16)));
      }
      corpus.push_back(bytes);
    }
  }
  if (corpus.empty()) {
    std::fprintf(stderr, "no golden messages read\n");
    return 2;
  }
  uint64_t state = 0x5eed;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  };
  for (long it = 0; it < iterations; ++it) {
    std::string m = corpus[next() % corpus.size()];
    int edits = 1 + static_cast<int>(next() % 4);
    for (int e = 0; e < edits && !m.empty(); ++e) {
      switch (next() % 5) {
        case 0:
          m.resize(next() % m.size());
          break;
        case 1:
          m[next() % m.size()] ^= static_cast<char>(1u << (next() % 8));
          break;
        case 2:
          m.insert(next() % m.size(), 1, static_cast<char>(next()));
          break;
        case 3:
          m[next() % m.size()] = static_cast<char>(next() % 2 ? 0xff : 0x7f);
          break;
        case 4:
          m += corpus[next() % corpus.size()].substr(0, next() % 16);
          break;
      }
    }
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(m.data()), m.size());
  }
  std::printf("%ld mutated messages decoded without a fault\n", iterations);
  return 0;
}
