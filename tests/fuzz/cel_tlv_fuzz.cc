// libFuzzer target: CEL-TLV parsing, RTMR replay and round trip to JSON.
#include <cstddef>
#include <cstdint>
#include <span>

#include "attest/tpm/cel.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto cel = attest::tpm::ParseCelTlv(std::span<const uint8_t>(data, size));
  if (!cel.ok()) return 0;
  (void)attest::tpm::ReplayCelToRtmr(*cel, 15);
  (void)attest::tpm::ParseCelJson(attest::tpm::SerializeCelJson(*cel));
  return 0;
}
