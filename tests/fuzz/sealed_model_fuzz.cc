// libFuzzer target: the JSON of a sealed model (attest/seal/sealed_image.h, key_file.h) — the
// public sealed-model.json the host ships, the table of contents once decrypted, and the key
// service's model key files.
#include <cstddef>
#include <cstdint>
#include <span>

#include "attest/seal/key_file.h"
#include "attest/seal/sealed_image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  (void)attest::seal::ParseSealedModel(bytes);
  (void)attest::seal::ParseToc(bytes);
  (void)attest::seal::DecryptModelKey(bytes, "fuzz passphrase");
  return 0;
}
