// An offline certificate store laid out like AMD KDS URL paths, so that a coordinator never needs
// the (rate-limited, often unavailable) KDS to verify a report:
//
//   DIR/<Product>/<chip_id hex>/<reported_tcb as 16 hex digits>.der   VCEK (DER)
//   DIR/<Product>/cert_chain.pem                                      ASK then ARK (PEM)
//
// <chip_id hex> is the lowercase hex of the 64-byte chip id (Turin: also its 8-byte hwID, as KDS
// uses it). VLEKs are not stored: they come with the evidence.
#ifndef ATTEST_SNP_CERT_STORE_H_
#define ATTEST_SNP_CERT_STORE_H_

#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attest/snp/report.h"
#include "attest/snp/verify.h"

namespace attest::snp {

class CertStore {
 public:
  explicit CertStore(std::filesystem::path dir) : dir_(std::move(dir)) {}

  // The store paths tried for a report, in order (for error messages and tooling).
  std::vector<std::filesystem::path> CandidateVcekPaths(const Report& report) const;

  // Finds the VCEK and chain for a report. NotFound names every path it tried.
  absl::StatusOr<Certificates> Find(const Report& report) const;

  // Relative path of a VCEK in the store: "<Product>/<chip_id hex>/<tcb hex>.der".
  static std::filesystem::path VcekPath(Product product, const Report& report);

 private:
  std::filesystem::path dir_;
};

}  // namespace attest::snp

#endif  // ATTEST_SNP_CERT_STORE_H_
