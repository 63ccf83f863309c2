// libFuzzer target: Intel collateral JSON (signed-object extraction, TCB info, QE identity) and
// the TCB level evaluation over whatever parses.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "attest/tdx/collateral.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  using namespace attest::tdx;  // NOLINT
  if (auto doc = ExtractSignedObject(text, "tcbInfo"); doc.ok()) {
    if (auto info = ParseTcbInfo(doc->raw); info.ok()) {
      std::array<uint8_t, 16> pck{}, tee{};
      pck.fill(3);
      tee[1] = 1;
      (void)EvaluateTcb(*info, pck, 11, tee);
    }
  }
  if (auto doc = ExtractSignedObject(text, "enclaveIdentity"); doc.ok()) {
    if (auto id = ParseQeIdentity(doc->raw); id.ok()) {
      QeReport qe;
      attest::CheckLog log;
      (void)EvaluateQeIdentity(*id, qe, log);
    }
  }
  return 0;
}
