// libFuzzer target: TUF metadata from a mirror (attest/tuf/metadata.h): the envelope, canonical
// JSON of "signed", keys and the four roles' fields; the release policy and target lookup of
// targets metadata (attest/tuf/release.h).
#include <cstddef>
#include <cstdint>
#include <span>

#include "attest/tuf/metadata.h"
#include "attest/tuf/release.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace attest::tuf;
  const std::span<const uint8_t> bytes(data, size);
  if (auto root = ParseRoot(bytes); root.ok()) {
    (void)VerifyRoleSignatures(root->envelope, "root", root->roles.at("root"), root->keys);
  }
  (void)ParseTimestamp(bytes);
  (void)ParseSnapshot(bytes);
  if (auto targets = ParseTargets(bytes); targets.ok()) {
    if (auto policy = PolicyOf(*targets); policy.ok()) (void)CheckRelease(*policy, 1);
    const uint8_t zero[32] = {};
    (void)FindTarget(*targets, zero, 0);
  }
  return 0;
}
