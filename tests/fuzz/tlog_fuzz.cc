// libFuzzer target: the transparency log's checkpoint and proof files (attest/tlog.h).
#include <cstddef>
#include <cstdint>
#include <span>

#include "attest/tlog.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace attest;
  static const tuf::Key key = *tuf::ParseKey(nlohmann::json{
      {"keytype", "ed25519"},
      {"scheme", "ed25519"},
      {"keyval",
       {{"public", "1c0a5b9a3bd7a0e8b2a1b4c3d2e1f00112233445566778899aabbccddeeff001"}}}});
  const std::span<const uint8_t> bytes(data, size);
  (void)tlog::VerifyCheckpoint(bytes, key);
  if (auto p = tlog::ParseInclusionProof(bytes); p.ok()) {
    tlog::Checkpoint c;
    c.size = p->size;
    (void)tlog::VerifyEntry(bytes, *p, c);
  }
  if (auto p = tlog::ParseConsistencyProof(bytes); p.ok()) {
    tlog::Checkpoint a, b;
    a.size = p->size1;
    b.size = p->size2;
    (void)tlog::VerifyExtends(a, b, *p);
  }
  return 0;
}
