// The AMD-specific X.509 extensions of a VCEK or VLEK certificate (AMD "Versioned Chip Endorsement
// Key (VCEK) Certificate and KDS Interface Specification", and the VLEK equivalent).
#ifndef ATTEST_SNP_AMD_CERT_H_
#define ATTEST_SNP_AMD_CERT_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace attest::snp {

inline constexpr char kOidStructVersion[] = "1.3.6.1.4.1.3704.1.1";
inline constexpr char kOidProductName[] = "1.3.6.1.4.1.3704.1.2";
inline constexpr char kOidBlSpl[] = "1.3.6.1.4.1.3704.1.3.1";
inline constexpr char kOidTeeSpl[] = "1.3.6.1.4.1.3704.1.3.2";
inline constexpr char kOidSnpSpl[] = "1.3.6.1.4.1.3704.1.3.3";
inline constexpr char kOidUcodeSpl[] = "1.3.6.1.4.1.3704.1.3.8";
inline constexpr char kOidFmcSpl[] = "1.3.6.1.4.1.3704.1.3.9";  // Turin
inline constexpr char kOidHwid[] = "1.3.6.1.4.1.3704.1.4";
inline constexpr char kOidCspId[] = "1.3.6.1.4.1.3704.1.5";  // VLEK: cloud provider

// Subject common names AMD uses for the two kinds of versioned endorsement keys.
inline constexpr char kVcekCommonName[] = "SEV-VCEK";
inline constexpr char kVlekCommonName[] = "SEV-VLEK";

// Upper bound for a VCEK/VLEK certificate (real ones are ~1.4 KB).
inline constexpr size_t kMaxVekCertificateSize = 16 * 1024;

struct AmdKeyExtensions {
  std::string subject_cn;  // "SEV-VCEK" or "SEV-VLEK"
  std::string issuer_cn;   // "SEV-Milan", "SEV-VLEK-Genoa", ...
  std::optional<int64_t> struct_version;
  std::optional<std::string> product_name;  // "Milan-B0", "Genoa", ...
  std::optional<uint8_t> bl_spl;
  std::optional<uint8_t> tee_spl;
  std::optional<uint8_t> snp_spl;
  std::optional<uint8_t> ucode_spl;
  std::optional<uint8_t> fmc_spl;
  std::optional<std::vector<uint8_t>> hwid;  // raw bytes: 64 (Milan/Genoa) or 8 (Turin)
  std::optional<std::string> csp_id;
};

// Parses a DER certificate and decodes the AMD extensions with OpenSSL's ASN.1 decoders:
// SPL values are DER INTEGERs 0-255, the product name and CSP id IA5Strings, hwID raw bytes.
// An extension that is present but malformed is an error; absent ones stay empty.
absl::StatusOr<AmdKeyExtensions> ParseAmdKeyExtensions(std::span<const uint8_t> cert_der);

}  // namespace attest::snp

#endif  // ATTEST_SNP_AMD_CERT_H_
