// Private to libattest: AMD extension extraction from an already parsed certificate.
#ifndef ATTEST_SNP_AMD_CERT_INTERNAL_H_
#define ATTEST_SNP_AMD_CERT_INTERNAL_H_

#include <openssl/x509.h>

#include "absl/status/statusor.h"
#include "attest/snp/amd_cert.h"

namespace attest::snp {

absl::StatusOr<AmdKeyExtensions> ExtractAmdKeyExtensions(const X509* cert);

}  // namespace attest::snp

#endif  // ATTEST_SNP_AMD_CERT_INTERNAL_H_
