// libFuzzer target: Azure HCL reports (binary) and evidence JSON; the first byte picks the parser.
#include <cstddef>
#include <cstdint>
#include <span>

#include "absl/strings/string_view.h"
#include "attest/azure/azure.h"
#include "attest/tpm/ak.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::span<const uint8_t> bytes(data + 1, size - 1);
  if (data[0] % 2 == 0) {
    auto hcl = attest::azure::ParseHclReport(bytes);
    if (hcl.ok()) {
      (void)attest::tpm::ParseAkJwk(
          absl::string_view(reinterpret_cast<const char*>(hcl->runtime_data.data()),
                            hcl->runtime_data.size()),
          "HCLAkPub");
    }
  } else {
    (void)attest::azure::ParseEvidenceJson(
        absl::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  }
  return 0;
}
