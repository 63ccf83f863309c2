// SoftwareTpmQuoter: a test-only TPM that emits TPM 2.0 wire formats — TPMT_PUBLIC for its AK,
// TPMS_ATTEST quotes over given PCR values and TPMT_SIGNATURE (RSASSA, RSAPSS, ECDSA) — so that
// every signature scheme is testable. Plus builders for synthetic TCG2 event logs.
#ifndef ATTEST_SOFTWARE_TPM_SIGNER_H_
#define ATTEST_SOFTWARE_TPM_SIGNER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attest/tpm/ak.h"
#include "attest/tpm/hash_alg.h"

namespace attest::testing {

class SoftwareTpmQuoter {
 public:
  enum class Scheme { kRsassa, kRsapss, kEcdsaP256 };
  static absl::StatusOr<std::unique_ptr<SoftwareTpmQuoter>> Create(
      Scheme scheme, uint16_t hash_alg = tpm::kAlgSha256);
  ~SoftwareTpmQuoter();

  const std::vector<uint8_t>& ak_tpmt_public() const { return ak_public_; }
  std::string ak_pem() const;

  struct SignedQuote {
    std::vector<uint8_t> attest;
    std::vector<uint8_t> signature;  // TPMT_SIGNATURE
  };
  // A TPM2_Quote over `pcrs` (every PCR of every bank given is selected) with this nonce.
  absl::StatusOr<SignedQuote> Quote(const tpm::PcrBanks& pcrs,
                                    const std::vector<uint8_t>& nonce) const;

 private:
  struct Impl;
  explicit SoftwareTpmQuoter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::vector<uint8_t> ak_public_;
};

struct TestEvent {
  uint32_t pcr;
  uint32_t type;
  std::vector<uint8_t> data;
};

// {"keys":[{"kid": kid, "kty":"RSA", "n", "e"}]}: an RSA AK as Azure's runtime data carries it.
std::string RsaJwkSet(const std::string& kid, const tpm::AkPublicKey& ak);

// A crypto-agile (Spec ID Event03) log whose digests are H(data) in every bank of `algs`.
std::vector<uint8_t> BuildTcg2Log(const std::vector<uint16_t>& algs,
                                  const std::vector<TestEvent>& events);

}  // namespace attest::testing

#endif  // ATTEST_SOFTWARE_TPM_SIGNER_H_
