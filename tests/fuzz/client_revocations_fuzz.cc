// libFuzzer target: the channel's client-revocation list (attest/tuf/client_revocations.h), read
// by the supervisor from its state directory and by appliance-release from its work directory.
#include <cstddef>
#include <cstdint>
#include <span>

#include "attest/tuf/client_revocations.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace attest::tuf;
  auto list = ParseClientRevocations(std::span<const uint8_t>(data, size));
  if (list.ok()) {
    // What we publish parses back to the same list.
    const std::string again = SerializeClientRevocations(*list);
    auto back = ParseClientRevocations(
        std::span(reinterpret_cast<const uint8_t*>(again.data()), again.size()));
    if (!back.ok() || back->revoked != list->revoked) __builtin_trap();
  }
  (void)SpkiSha256OfPemCertificate(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
