// Evidence bundles (appliance.v1.Evidence) assembled at run time from the real cloud vectors in
// ../shared/vectors (issue 11): nothing from the vectors is copied into the project. Shared by
// cloud_evidence_tests and cloud_bench.
#ifndef TESTS_TESTING_CLOUD_VECTORS_H_
#define TESTS_TESTING_CLOUD_VECTORS_H_

#include <filesystem>
#include <string>
#include <vector>

#include "appliance/v1/evidence.pb.h"
#include "attest/tpm/ak.h"

namespace attest::testing {

std::string Str(const std::vector<uint8_t>& b);

// A restricted RSASSA/SHA-256 signing key's TPMT_PUBLIC around an RSA public key (how a TPM
// would describe Azure's HCLAkPub; the runtime data carries only the JWK).
std::vector<uint8_t> RsaAkTpmtPublic(const tpm::AkPublicKey& ak);
// A bare RSASSA-PKCS1-v1_5/SHA-256 signature as a TPMT_SIGNATURE.
std::vector<uint8_t> RsassaTpmtSignature(const std::vector<uint8_t>& raw);

// Azure (Genoa, SEV-SNP behind the paravisor): HCL report + VCEK, the vTPM quote signed by
// HCLAkPub over the 24 SHA-256 PCRs.
appliance::v1::Evidence AzureVectorBundle(const std::filesystem::path& vectors);
// AWS (Milan, VLEK): the report and its VLEK, the ASVK and ARK from AMD's KDS bundle.
appliance::v1::Evidence AwsVectorBundle(const std::filesystem::path& vectors);
// Google Cloud (a shielded VM's vTPM, run by the host): the SHA-256 bank quote, the AK and its
// certificate from Google's EK/AK CA.
appliance::v1::Evidence GceVectorBundle(const std::filesystem::path& vectors);

}  // namespace attest::testing

#endif  // TESTS_TESTING_CLOUD_VECTORS_H_
