// libFuzzer target: AMD VCEK/VLEK certificate extension parsing (OpenSSL's DER decoders
// underneath).
#include <cstddef>
#include <cstdint>
#include <span>

#include "attest/snp/amd_cert.h"
#include "attest/snp/report.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto ext = attest::snp::ParseAmdKeyExtensions(std::span<const uint8_t>(data, size));
  if (ext.ok() && ext->product_name) (void)attest::snp::ProductFromName(*ext->product_name);
  return 0;
}
