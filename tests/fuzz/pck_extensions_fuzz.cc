// libFuzzer target: the PCK certificate's SGX extension decoder (OID 1.2.840.113741.1.13.1, with
// OpenSSL's ASN.1 decoders) on DER certificates, and on each certificate of a PEM chain.
#include <cstddef>
#include <cstdint>
#include <span>

#include "attest/files.h"
#include "attest/tdx/verify.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  (void)attest::tdx::ParsePckExtensions(bytes);
  auto chain = attest::ParseCertificates(bytes, "fuzz");
  if (chain.ok()) {
    for (const auto& der : *chain) (void)attest::tdx::ParsePckExtensions(der);
  }
  return 0;
}
