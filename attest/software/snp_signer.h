// SoftwareSnpSigner: a test-only AMD SEV-SNP "firmware" that emits the exact hardware formats.
//
// It generates an ARK → ASK → VCEK and ARK → ASVK → VLEK hierarchy with AMD's certificate profile
// (RSA-4096 RSASSA-PSS/SHA-384 roots, P-384 endorsement keys, AMD's TCB/hwID/productName
// extensions; subject common names as AMD writes them, organisation "SoftwareSnpSigner TEST") and
// signs ATTESTATION_REPORTs of versions 2, 3 and 5 in the Milan/Genoa and Turin layouts.
// Its roots are never trusted by default: a verifier accepts its evidence only when given
// ark_der() as an explicit trust anchor.
#ifndef ATTEST_SOFTWARE_SNP_SIGNER_H_
#define ATTEST_SOFTWARE_SNP_SIGNER_H_

#include <openssl/types.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "attest/snp/report.h"

namespace attest::testing {

// A VCEK or VLEK: its certificate and (test-only, in memory) private key.
struct SoftwareVek {
  snp::SigningKey kind = snp::SigningKey::kVcek;
  std::vector<uint8_t> cert_der;
  std::shared_ptr<EVP_PKEY> key;
};

struct VekOptions {
  snp::SigningKey kind = snp::SigningKey::kVcek;
  snp::TcbVersion tcb;
  std::array<uint8_t, 64> chip_id{};                          // VCEK hwID (Turin: first 8 bytes)
  absl::Time not_before = absl::FromUnixSeconds(1672531200);  // 2023-01-01
  absl::Time not_after = absl::FromUnixSeconds(2524608000);   // 2050-01-01
  std::optional<std::string> product_name;             // default: "Milan-B0", "Genoa", "Turin"
  std::string csp_id = "CN=software-snp-signer.test";  // VLEK only
  bool omit_hwid = false;
};

class SoftwareSnpSigner {
 public:
  // rsa_bits: 4096 as AMD's roots; smaller only to speed up tests that do not care.
  static absl::StatusOr<std::unique_ptr<SoftwareSnpSigner>> Create(snp::Product product,
                                                                   int rsa_bits = 4096);
  ~SoftwareSnpSigner();

  snp::Product product() const { return product_; }
  const std::vector<uint8_t>& ark_der() const { return ark_der_; }
  const std::vector<uint8_t>& ask_der() const { return ask_der_; }
  const std::vector<uint8_t>& asvk_der() const { return asvk_der_; }
  // [ASK or ASVK, ARK], as AMD KDS serves cert_chain.
  std::vector<std::vector<uint8_t>> Chain(snp::SigningKey kind) const;

  absl::StatusOr<SoftwareVek> IssueVek(const VekOptions& options) const;

  // Encodes `fields` (version, policy, TCBs, ...; the signature fields are ignored) into the
  // report layout and signs bytes [0, 0x2A0) with the VEK. Set fields.signing_key to match it.
  absl::StatusOr<std::vector<uint8_t>> SignReport(const snp::Report& fields,
                                                  const SoftwareVek& vek) const;

  // The common case of every SNP test: issue a VEK with `vek` options, build report fields for
  // this product and `version` (MakeReportFields; SIGNING_KEY set to the VEK's kind, chip id
  // zero for a VLEK), let `edit` change them, and sign.
  struct Evidence {
    std::vector<uint8_t> report;
    SoftwareVek vek;
    std::vector<std::vector<uint8_t>> chain;  // [ASK or ASVK, ARK]
  };
  absl::StatusOr<Evidence> MakeEvidence(uint32_t version, const VekOptions& vek,
                                        const std::function<void(snp::Report&)>& edit = {}) const;

  // A CRL signed by the ARK, listing these serial numbers.
  absl::StatusOr<std::vector<uint8_t>> MakeCrl(const std::vector<uint64_t>& revoked_serials,
                                               absl::Time this_update,
                                               absl::Time next_update) const;

  // Serial numbers of the intermediates (for revocation tests).
  static constexpr uint64_t kAskSerial = 0x10001;
  static constexpr uint64_t kAsvkSerial = 0x10002;

 private:
  struct Keys;
  SoftwareSnpSigner(snp::Product product, std::unique_ptr<Keys> keys);

  snp::Product product_;
  std::unique_ptr<Keys> keys_;
  std::vector<uint8_t> ark_der_, ask_der_, asvk_der_;
};

// Encodes a report's fields at their ABI offsets (signature area zero). Exposed for tests that
// need an unsigned or deliberately malformed report.
std::vector<uint8_t> EncodeReport(const snp::Report& fields);

// A plausible report for a product and version: CPUID set (v3+), policy 0x30000 (SMT, bit 17),
// all TCBs = `tcb`, chip id = `chip_id`.
snp::Report MakeReportFields(snp::Product product, uint32_t version, const snp::TcbVersion& tcb,
                             const std::array<uint8_t, 64>& chip_id);

// One signer per product for the whole test process (RSA-4096 key generation costs ~1 s a key).
const SoftwareSnpSigner& SharedSnpSigner(snp::Product product);

}  // namespace attest::testing

#endif  // ATTEST_SOFTWARE_SNP_SIGNER_H_
