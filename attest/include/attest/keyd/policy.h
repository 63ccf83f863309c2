// A model's key release policy (issue 10, docs/sealed-model.md): what evidence appliance-keyd
// accepts before it releases that model's key. Kept in the key service's store beside the model's
// encrypted key file and reference values:
//
//   {"version": 1, "model_id": ID,
//    "platforms": ["snp", "tdx", "vtpm-only"],       which evidence platforms are accepted
//    "launch_config_sha256": ["<64 hex>", ...],       accepted launch configurations (required)
//    "min_release_version": N,                         optional: the channel's minimum release
//    "revoked_releases": [N, ...]}                     optional
//
// The reference values (measurements, TCB minimums, debug, boot PCRs, containers) are the
// model's reference-values.json (docs/reference-values.md). Strict: unknown keys, wrong types and
// empty lists are malformed input.
#ifndef ATTEST_KEYD_POLICY_H_
#define ATTEST_KEYD_POLICY_H_

#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attest/evidence.h"

namespace attest::keyd {

inline constexpr size_t kMaxPolicySize = 64 * 1024;

struct ModelPolicy {
  uint32_t version = 1;
  std::string model_id;
  std::set<std::string> platforms;  // "snp", "tdx", "vtpm-only"
  std::vector<std::array<uint8_t, 32>> launch_config_sha256;
  std::optional<uint64_t> min_release_version;
  std::set<uint64_t> revoked_releases;
};

absl::StatusOr<ModelPolicy> ParseModelPolicy(std::span<const uint8_t> json);
std::string SerializeModelPolicy(const ModelPolicy& p);

// The expectations for one release request: the evidence must bind `nonce`, the caller's TLS key
// and `key_request_spki`, be taken before or after the container is measured, come from an
// accepted platform (checked by the caller on VerifiedEvidence::platform) with an accepted launch
// configuration, and satisfy `reference` and the release policy.
EvidenceExpectations ExpectationsFor(const ModelPolicy& policy, const ReferenceValues& reference,
                                     std::vector<uint8_t> nonce,
                                     std::vector<uint8_t> client_spki_der,
                                     std::vector<uint8_t> key_request_spki_der,
                                     std::vector<uint8_t> launch_config);

// The policy checks VerifyEvidence does not make: the launch configuration is one the policy
// lists ("policy.launch-config"), the platform is allowed ("policy.platform").
absl::Status CheckLaunchConfig(const ModelPolicy& policy, std::span<const uint8_t> launch_config,
                               CheckLog& log);
absl::Status CheckPlatform(const ModelPolicy& policy, const VerifiedEvidence& verified,
                           CheckLog& log);

}  // namespace attest::keyd

#endif  // ATTEST_KEYD_POLICY_H_
