// libFuzzer target: what the supervisor reads from Azure's Instance Metadata Service on platform
// azure (supervisor/azure_imds.h): THIM's JSON with the VCEK chain, and the TD quote response.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "supervisor/azure_imds.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  (void)appliance::supervisor::ParseThimResponse(text);
  (void)appliance::supervisor::ParseTdQuoteResponse(text);
  return 0;
}
