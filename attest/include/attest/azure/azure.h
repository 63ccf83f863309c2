// Azure confidential VMs: evidence from the paravisor's vTPM. The HCL report carries the hardware
// report (SNP ATTESTATION_REPORT, or a TDX TDREPORT) whose report data binds the HCL runtime data,
// which carries the vTPM attestation key (HCLAkPub); that key signs a TPM quote over the PCRs.
//
// HCL report layout (2600 bytes): "HCLA" header (32 bytes), hardware report at 0x20, runtime-data
// header at 0x4C0 (data_size, version, report_type: 2 SNP / 4 TDX, hash_type: 1 SHA-256 / 2 SHA-384
// / 3 SHA-512, variable_size), runtime data (JSON) at 0x4D4.
#ifndef ATTEST_AZURE_AZURE_H_
#define ATTEST_AZURE_AZURE_H_

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "attest/check.h"
#include "attest/snp/verify.h"
#include "attest/tdx/verify.h"
#include "attest/tpm/hash_alg.h"
#include "attest/tpm/quote.h"

namespace attest::azure {

inline constexpr uint32_t kReportTypeSnp = 2;
inline constexpr uint32_t kReportTypeTdx = 4;
inline constexpr size_t kMaxEvidenceJsonSize = 1024 * 1024;

struct HclReport {
  uint32_t version = 0;
  uint32_t report_type = 0;
  uint32_t hash_type = 0;
  std::vector<uint8_t> hardware_report;  // 1184 bytes (SNP) or 1024 bytes (TDX TDREPORT)
  std::vector<uint8_t> runtime_data;     // exactly the variable data the report data binds
};

absl::StatusOr<HclReport> ParseHclReport(std::span<const uint8_t> bytes);

struct Evidence {
  HclReport hcl;
  std::vector<uint8_t> vcek_der;   // SNP form
  std::vector<uint8_t> td_quote;   // TDX form
  std::vector<uint8_t> quote;      // TPMS_ATTEST
  std::vector<uint8_t> signature;  // bare RSASSA signature by HCLAkPub
  tpm::PcrBanks pcrs;              // the 24 SHA-256 PCRs that come with the quote
};

// Both layouts of the vectors' MANIFEST: SNP {"report", "vcek", "quote": {"message", "signature",
// "pcrs"}} and TDX {"hcl_report", "td_quote", "tpm_quote": {...}}; byte fields are integer arrays.
absl::StatusOr<Evidence> ParseEvidenceJson(absl::string_view json);

struct Options {
  snp::Options snp;                             // clock and SNP policy
  tdx::Options tdx;                             // TDX form: clock, root, collateral, TD policy
  snp::VerifierConfig roots;                    // SNP trust anchors (built-in by default)
  std::vector<std::vector<uint8_t>> snp_chain;  // optional ASK, ARK
  std::vector<uint8_t> nonce;
  std::optional<tpm::PcrBanks> expected_pcrs;
};

struct Verified {
  std::optional<snp::VerifiedReport> snp;  // SNP form
  std::optional<tdx::VerifiedQuote> tdx;   // TDX form
  tpm::AkPublicKey ak;
  tpm::VerifiedQuote quote;
};

// What the hardware report's REPORTDATA vouches for: the runtime data, bound as H(runtime data)
// followed by zeros (check "azure.runtime_data.binding"), carries the vTPM attestation key
// HCLAkPub (check "azure.ak") and the 64 bytes of user data the guest last wrote to the vTPM NV
// index 0x01400002 before the paravisor made this report ("user-data", hex; zeros if none).
struct RuntimeClaims {
  tpm::AkPublicKey ak;
  std::vector<uint8_t> user_data;  // empty when the runtime data has no "user-data"
};
// The runtime data's "user-data" alone, not checked against any report (the producer's look at
// whether the paravisor refreshed its report): empty when absent; InvalidArgument when it is not
// 64 bytes of hex.
absl::StatusOr<std::vector<uint8_t>> RuntimeUserData(const HclReport& hcl);
absl::StatusOr<RuntimeClaims> CheckRuntimeData(const HclReport& hcl,
                                               std::span<const uint8_t> report_data, CheckLog& log);

// The HCL report's TDREPORT (TDX form) carries `quoted_report_data` (check "azure.tdreport").
absl::Status CheckTdReport(const HclReport& hcl, std::span<const uint8_t> quoted_report_data,
                           CheckLog& log);

// The paravisor's vTPM NV indices (docs/cloud.md): the HCL report (read), and the 64 bytes of
// user data the guest writes to have the paravisor make a fresh report.
inline constexpr uint32_t kHclReportNvIndex = 0x01400001;
inline constexpr uint32_t kUserDataNvIndex = 0x01400002;
inline constexpr size_t kUserDataSize = 64;
// The paravisor's persistent vTPM attestation key (the key HCLAkPub names).
inline constexpr uint32_t kAkPersistentHandle = 0x81000003;

// SNP report → runtime-data binding → HCLAkPub → quote (nonce, signature) → PCR digest → expected
// PCRs. TDX form: the TD quote is verified (tdx::VerifyQuote), the HCL report's TDREPORT must carry
// the quote's REPORTDATA (check "azure.tdreport"), and that REPORTDATA binds the runtime data.
absl::StatusOr<Verified> VerifyEvidence(const Evidence& evidence, const Options& options,
                                        CheckLog* log = nullptr);

}  // namespace attest::azure

#endif  // ATTEST_AZURE_AZURE_H_
