// GetEvidence for a nonce the test chooses, over plain mTLS (no attestation): the bundle as the
// appliance sent it, for splicing and tampering tests.
#ifndef TESTS_TESTING_EVIDENCE_FETCH_H_
#define TESTS_TESTING_EVIDENCE_FETCH_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace attest::testing {

struct IssuedCert;

// The serialized appliance.v1.Evidence, or the call's error (Unavailable with gRPC's message).
absl::StatusOr<std::string> FetchEvidence(const std::string& target, const IssuedCert& client,
                                          const std::vector<uint8_t>& nonce);

}  // namespace attest::testing

#endif  // TESTS_TESTING_EVIDENCE_FETCH_H_
