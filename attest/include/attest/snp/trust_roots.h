// Built-in AMD roots: ARK, ASK (signs VCEKs) and ASVK (signs VLEKs) for Milan, Genoa and Turin,
// as published by AMD's key distribution service. Compiled in and pinned by SHA-256 fingerprint.
#ifndef ATTEST_SNP_TRUST_ROOTS_H_
#define ATTEST_SNP_TRUST_ROOTS_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "attest/snp/report.h"

namespace attest::snp {

struct AmdRootCertificates {
  Product product = Product::kUnknown;
  std::vector<uint8_t> ark_der;
  std::vector<uint8_t> ask_der;
  std::vector<uint8_t> asvk_der;
};

// Pinned SHA-256 fingerprints (of the DER) of the built-in certificates, lowercase hex.
struct PinnedFingerprints {
  absl::string_view ark;
  absl::string_view ask;
  absl::string_view asvk;
};
PinnedFingerprints BuiltinFingerprints(Product product);

// The built-in certificates for a product. Fails (InternalError) if an embedded certificate
// does not match its pinned fingerprint, so a corrupted build can never trust a wrong root.
absl::StatusOr<AmdRootCertificates> BuiltinAmdRoots(Product product);

}  // namespace attest::snp

#endif  // ATTEST_SNP_TRUST_ROOTS_H_
