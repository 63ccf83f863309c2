// libFuzzer target: the launch configuration parser (JSON, strict schema, PEM CA certificates).
#include <cstddef>
#include <cstdint>
#include <span>

#include "attest/launch_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)attest::ParseLaunchConfig(std::span<const uint8_t>(data, size));
  return 0;
}
