// The SEV-SNP certificate table (GHCB specification, "SNP Extended Guest Request"): what the host
// hands a guest with an extended report (configfs-tsm `auxblob`, SNP_GET_EXT_REPORT certs_address).
// A list of 24-byte entries (GUID, u32 offset, u32 length; little endian) ended by an all-zero
// entry; each certificate lies at `offset` within the table. Bounded and strict: entries must lie
// inside the table, after the terminator, and not repeat a GUID.
#ifndef ATTEST_SNP_CERT_TABLE_H_
#define ATTEST_SNP_CERT_TABLE_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace attest::snp {

inline constexpr size_t kMaxCertTableSize = 64 * 1024;

struct CertTable {
  std::vector<uint8_t> vcek_der, vlek_der, ask_der, ark_der;
  std::vector<std::string> other_guids;  // entries we do not use, by GUID text
};

absl::StatusOr<CertTable> ParseCertTable(std::span<const uint8_t> bytes);

}  // namespace attest::snp

#endif  // ATTEST_SNP_CERT_TABLE_H_
