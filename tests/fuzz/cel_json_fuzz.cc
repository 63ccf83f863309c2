// libFuzzer target: CEL-JSON parsing (arrays and JSON-SEQ), record checks, replay, re-encoding.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "attest/tpm/cel.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto cel =
      attest::tpm::ParseCelJson(absl::string_view(reinterpret_cast<const char*>(data), size));
  if (!cel.ok()) return 0;
  attest::CheckLog log;
  (void)attest::tpm::CheckCelRecords(*cel, log);
  (void)attest::tpm::ReplayCel(*cel);
  (void)attest::tpm::ParseCelTlv(attest::tpm::SerializeCelTlv(*cel));
  return 0;
}
