// SEV-SNP report verification: VCEK/VLEK → ASK/ASVK → ARK chain, report signature, consistency of
// the report with its certificate (signing key, product, TCB, hwID), and policy.
//
// Order (cheapest first, so that bad input costs little): parse → certificate consistency →
// certificate chain (RSA-PSS) → report signature (ECDSA P-384) → policy. Policy checks run only on
// a report whose signature verified, so a policy failure always means "authentic but unwanted".
#ifndef ATTEST_SNP_VERIFY_H_
#define ATTEST_SNP_VERIFY_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "attest/check.h"
#include "attest/snp/report.h"
#include "attest/verify_options.h"

namespace attest::snp {

struct Policy {
  bool allow_debug = false;  // debug guests are rejected unless this is set
  std::optional<uint32_t> max_vmpl;
  bool require_no_smt = false;                  // PLATFORM_INFO.SMT_EN must be 0
  bool require_no_migration_agent = false;      // POLICY.MIGRATE_MA must be 0
  bool require_single_socket = false;           // POLICY.SINGLE_SOCKET must be 1
  std::optional<TcbVersion> min_tcb;            // compared with REPORTED_TCB, per component
  std::optional<TcbVersion> min_committed_tcb;  // compared with COMMITTED_TCB
  std::optional<TcbVersion> min_launch_tcb;     // compared with LAUNCH_TCB
  // Exact values; each must have the field's size (checked by the verifier).
  std::optional<std::vector<uint8_t>> measurement;    // 48
  std::optional<std::vector<uint8_t>> report_data;    // 64
  std::optional<std::vector<uint8_t>> host_data;      // 32
  std::optional<std::vector<uint8_t>> id_key_digest;  // 48
  std::optional<std::vector<uint8_t>> family_id;      // 16
  std::optional<std::vector<uint8_t>> image_id;       // 16
  std::optional<std::vector<uint8_t>> chip_id;        // 64 (pins the machine against relays)
};

// The certificates that come with a report.
struct Certificates {
  std::vector<uint8_t> vek_der;  // VCEK or VLEK
  // Optional, in AMD KDS cert_chain order: the ASK or ASVK, then optionally the ARK (which must
  // be one of the trusted roots). Every certificate given must be on the verified path.
  std::vector<std::vector<uint8_t>> chain_der;
};

struct VerifierConfig {
  // Roots (ARKs, DER) to trust. Empty: the built-in AMD ARKs, pinned by fingerprint. Each given
  // root must be self-signed; its signature is checked once, here.
  std::vector<std::vector<uint8_t>> trust_anchors_der;
  // Intermediates (ASK/ASVK, DER) used when a report comes without a chain. Empty with built-in
  // anchors: the built-in ASKs and ASVKs.
  std::vector<std::vector<uint8_t>> intermediates_der;
  // CRLs (DER) from AMD's KDS, signed by an ARK. When any is given, the chain's ARK must have one.
  std::vector<std::vector<uint8_t>> crls_der;
  // Reuse verified chains (keyed by the certificates' bytes) within their validity window.
  bool cache_chains = true;
};

struct Options : VerifyOptions {
  Policy policy;
};

struct VerifiedReport {
  Report report;
  Product product = Product::kUnknown;
  SigningKey signer = SigningKey::kVcek;
  TcbVersion current_tcb;
  TcbVersion reported_tcb;
  TcbVersion committed_tcb;
  TcbVersion launch_tcb;
};

// Verifies reports against a fixed set of roots and CRLs. Verified certificate chains are
// cached (keyed by the certificates' bytes, valid for the chain's validity window), so
// verifying many reports from one machine costs one ECDSA verification each.
// Thread-safe.
class Verifier {
 public:
  static absl::StatusOr<std::unique_ptr<Verifier>> Create(const VerifierConfig& config);
  ~Verifier();
  Verifier(const Verifier&) = delete;
  Verifier& operator=(const Verifier&) = delete;

  // Returns the verified report, or the first failed check: a VerificationFailed() status
  // (exit 1) when a check fails, another status (exit 2) when input is malformed.
  // Every check that ran is appended to `log` when given.
  absl::StatusOr<VerifiedReport> Verify(std::span<const uint8_t> report_bytes,
                                        const Certificates& certs, const Options& options,
                                        CheckLog* log = nullptr) const;
  absl::StatusOr<VerifiedReport> Verify(const Report& report, const Certificates& certs,
                                        const Options& options, CheckLog* log = nullptr) const;

  size_t cached_chains() const;

 private:
  struct Impl;
  explicit Verifier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The report's signature (R, S little-endian at 0x2A0/0x2E8) as a DER ECDSA-Sig-Value, the form
// OpenSSL and `openssl dgst -verify` take.
absl::StatusOr<std::vector<uint8_t>> SignatureToDer(const Report& report);

// One-shot convenience: Verifier::Create(config)->Verify(...).
absl::StatusOr<VerifiedReport> VerifyReport(std::span<const uint8_t> report_bytes,
                                            const Certificates& certs, const Options& options,
                                            const VerifierConfig& config = {},
                                            CheckLog* log = nullptr);

}  // namespace attest::snp

#endif  // ATTEST_SNP_VERIFY_H_
