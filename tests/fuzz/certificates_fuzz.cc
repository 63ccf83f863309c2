// libFuzzer target: certificate files (DER or PEM bundles), CRLs, hex and base64 inputs.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "attest/encoding.h"
#include "attest/files.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  (void)attest::ParseCertificates(bytes, "fuzz");
  (void)attest::ParseCrl(bytes, "fuzz");
  std::string text(reinterpret_cast<const char*>(data), size);
  (void)attest::HexDecode(text);
  (void)attest::Base64Decode(text);
  return 0;
}
