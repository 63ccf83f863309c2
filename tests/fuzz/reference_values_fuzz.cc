// libFuzzer target: the reference-values parser (JSON, strict schema).
#include <cstddef>
#include <cstdint>
#include <span>

#include "attest/evidence.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)attest::ParseReferenceValues(std::span<const uint8_t>(data, size));
  return 0;
}
