// libFuzzer target: TUF metadata from a mirror (attest/tuf/metadata.h): the envelope, canonical
// JSON of "signed", keys and the four roles' fields.
#include <cstddef>
#include <cstdint>
#include <span>

#include "attest/tuf/metadata.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace attest::tuf;
  const std::span<const uint8_t> bytes(data, size);
  if (auto root = ParseRoot(bytes); root.ok()) {
    (void)VerifyRoleSignatures(root->envelope, "root", root->roles.at("root"), root->keys);
  }
  (void)ParseTimestamp(bytes);
  (void)ParseSnapshot(bytes);
  (void)ParseTargets(bytes);
  return 0;
}
