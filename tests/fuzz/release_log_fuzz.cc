// libFuzzer target: the release log's index and entry files (attest/tuf/release.h), which a
// coordinator fetches from the log's mirror before any proof is checked, and a release's SBOM.
#include <cstddef>
#include <cstdint>
#include <span>

#include "attest/tuf/release.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  (void)attest::tuf::ParseLogIndex(bytes);
  (void)attest::tuf::ParseLogEntry(bytes);
  (void)attest::tuf::ParseSbom(bytes);
  // A target's custom field as the updater and `appliance-verify release` read it.
  auto custom = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (!custom.is_discarded()) {
    attest::tuf::TargetFile target;
    target.custom = std::move(custom);
    (void)attest::tuf::ReleaseOf(target);
  }
  return 0;
}
