// libFuzzer target: a sealed model blob (attest/seal/sealed_blob.h) as the supervisor receives it
// from the host: the header parser and the chunked authenticated decryption, under a fixed key.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "attest/seal/sealed_blob.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  if (size >= attest::seal::kHeaderSize) {
    (void)attest::seal::ParseHeader(bytes.first(attest::seal::kHeaderSize));
  }
  attest::seal::ModelKey key;
  key.fill(0x5a);  // the corpus's seeds are sealed under this key (tests/fuzz/make_seeds.cc)
  (void)attest::seal::Open(bytes, key);
  std::vector<uint8_t> out(size);
  (void)attest::seal::OpenInto(bytes, key, out);
  return 0;
}
