// libFuzzer target: the SEV-SNP certificate table (configfs-tsm auxblob, extended report certs).
#include <cstddef>
#include <cstdint>
#include <span>

#include "attest/snp/cert_table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)attest::snp::ParseCertTable(std::span<const uint8_t>(data, size));
  return 0;
}
