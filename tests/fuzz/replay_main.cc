// Replays fuzz inputs through a libFuzzer target without libFuzzer (gcc builds, CTest `fuzz`).
// Arguments are files or directories; "@vectors/SUB" adds the real vectors' SUB directory
// (../shared/vectors or $APPLIANCE_VECTORS) when present, recursively, never copied.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "test_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

constexpr size_t kMaxInput = 1 << 20;

int RunFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> data((std::istreambuf_iterator<char>(in)), {});
  if (data.size() > kMaxInput) return 0;
  LLVMFuzzerTestOneInput(data.data(), data.size());
  // Every truncation of a seed, too: parsers must reject each prefix cleanly.
  for (size_t n = 0; n < data.size() && data.size() <= 8192; n += 1 + n / 64) {
    LLVMFuzzerTestOneInput(data.data(), n);
  }
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  int inputs = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::filesystem::path root;
    if (arg.rfind("@vectors/", 0) == 0) {
      auto vectors = attest::testing::VectorsDir();
      if (!vectors) {
        std::printf("replay: real vectors not found; skipping %s\n", arg.c_str());
        continue;
      }
      root = *vectors / arg.substr(9);
    } else {
      root = arg;
    }
    if (std::filesystem::is_directory(root)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
        if (e.is_regular_file()) inputs += RunFile(e.path());
      }
    } else if (std::filesystem::is_regular_file(root)) {
      inputs += RunFile(root);
    } else {
      std::fprintf(stderr, "replay: %s does not exist\n", root.c_str());
      return 1;
    }
  }
  std::printf("replay: %d inputs, no crash\n", inputs);
  return inputs > 0 ? 0 : 1;
}
