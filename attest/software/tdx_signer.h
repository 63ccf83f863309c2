// SoftwareTdxSigner: a test-only Intel TDX "platform": a test root → PCK CA → PCK leaf (with the
// SGX extension) hierarchy, a QE whose report the PCK key signs, an attestation key that signs
// quotes v4/v5 in the exact DCAP format, and a TCB Signing certificate that signs TCB info / QE
// identity collateral. Organisation "SoftwareTdxSigner TEST (not Intel)"; verifiers accept its
// quotes only when given root_der() as the trust anchor.
#ifndef ATTEST_SOFTWARE_TDX_SIGNER_H_
#define ATTEST_SOFTWARE_TDX_SIGNER_H_

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attest/tdx/quote.h"

namespace attest::testing {

class SoftwareTdxSigner {
 public:
  static absl::StatusOr<std::unique_ptr<SoftwareTdxSigner>> Create();
  ~SoftwareTdxSigner();

  const std::vector<uint8_t>& root_der() const { return root_der_; }
  std::vector<std::vector<uint8_t>> tcb_signing_chain() const {
    return {tcb_signer_der_, root_der_};
  }

  struct QuoteSpec {
    uint16_t version = 4;
    tdx::TdReport body;  // body.tdx15 selects the TDX 1.5 layout (v5 only)
    std::array<uint8_t, 16> pck_tcb{};
    uint32_t pcesvn = 11;
    std::vector<uint8_t> fmspc = {0x00, 0x90, 0x6e, 0xa1, 0x00, 0x00};
    uint16_t qe_isvsvn = 8;
    uint64_t pck_serial = 0x1234;
  };
  // Issues a PCK leaf with the spec's SGX extension and signs a quote with it.
  absl::StatusOr<std::vector<uint8_t>> SignQuote(const QuoteSpec& spec) const;

  // {"<key>":<object_json>,"signature":"<hex r||s>"} signed by the TCB Signing key.
  absl::StatusOr<std::string> SignCollateral(const std::string& key,
                                             const std::string& object_json) const;

  // CRLs (DER) by the root (no entries) and by the PCK CA (revoking these serials).
  absl::StatusOr<std::vector<uint8_t>> RootCrl() const;
  absl::StatusOr<std::vector<uint8_t>> PckCrl(const std::vector<uint64_t>& revoked) const;

  // The QE identity values the signer's QE report carries.
  static constexpr uint16_t kQeProdId = 2;
  static std::array<uint8_t, 32> QeMrsigner();

 private:
  struct Keys;
  explicit SoftwareTdxSigner(std::unique_ptr<Keys> keys);
  std::unique_ptr<Keys> keys_;
  std::vector<uint8_t> root_der_, tcb_signer_der_;
};

// TCB info (v3, TDX) object JSON with one level per entry: (sgx comps, pcesvn, tdx comps, status).
struct TestTcbLevel {
  std::array<uint8_t, 16> sgx{};
  uint32_t pcesvn = 0;
  std::array<uint8_t, 16> tdx{};
  std::string status;
};
std::string TcbInfoJson(const std::vector<uint8_t>& fmspc, const std::vector<TestTcbLevel>& levels,
                        const std::string& issue, const std::string& next);
std::string QeIdentityJson(uint16_t isvsvn_up_to_date, const std::string& issue,
                           const std::string& next);

// The quote spec the supervisor's software-tdx platform (and the Azure TDX test service) signs
// with: TDX 1.0 body, v4 quote, a TCB that the collateral below rates UpToDate.
SoftwareTdxSigner::QuoteSpec DefaultTestQuoteSpec();

// Writes what a verifier needs for `signer`'s quotes made from `spec`: `dir`/tdx_root.pem and
// `dir`/tdx-collateral/ (tcb_info.json, qe_identity.json, tcb_info_issuer_chain.pem; TCB info and
// QE identity signed by the test TCB signing key, valid from a day before now for 30 days).
absl::Status WriteTestTdxRoots(const SoftwareTdxSigner& signer,
                               const SoftwareTdxSigner::QuoteSpec& spec,
                               const std::filesystem::path& dir);

}  // namespace attest::testing

#endif  // ATTEST_SOFTWARE_TDX_SIGNER_H_
