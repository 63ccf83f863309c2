// A test stand-in for Azure's paravisor (TEST ONLY; issue 11, docs/cloud.md): a TPM command
// proxy on loopback between the supervisor and swtpm that does what the paravisor does with its
// vTPM — it serves the HCL report NV index 0x01400001 (2600 bytes; swtpm's NV indices stop at
// 2048, so the proxy answers TPM2_NV_ReadPublic and TPM2_NV_Read for it itself) and, whenever
// the guest writes 64 bytes of user data to NV index 0x01400002 (kept by swtpm), makes a fresh
// HCL report: runtime data carrying the AK at 0x81000003 (HCLAkPub) and that user data, bound
// by an SEV-SNP report from the software signer. Every other command goes to swtpm unchanged.
#ifndef TESTS_TESTING_AZURE_PARAVISOR_H_
#define TESTS_TESTING_AZURE_PARAVISOR_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attest/tpm/ak.h"

namespace attest::testing {

class AzureParavisor {
 public:
  struct Options {
    int swtpm_port = 0;                     // swtpm's command port (control: + 1)
    tpm::AkPublicKey ak;                    // the AK persistent at 0x81000003 (HCLAkPub)
    std::array<uint8_t, 48> measurement{};  // the launch digest (SNP MEASUREMENT or TDX MRTD)
    // TDX: the HCL report holds a TDREPORT (REPORTDATA at 128 binds the runtime data, MRTD at
    // 528, ATTRIBUTES at 512); the TD quote for it comes from (a stand-in for) Azure's IMDS.
    bool tdx = false;
  };
  static absl::StatusOr<std::unique_ptr<AzureParavisor>> Start(const Options& options);
  ~AzureParavisor();

  std::string tcti() const;  // swtpm TCTI for the proxy's ports
  const std::vector<uint8_t>& vcek_der() const;
  const std::vector<uint8_t>& ark_der() const;
  std::vector<std::vector<uint8_t>> chain_der() const;  // ASK, ARK
  // Frozen: writes of user data are passed to swtpm but no new report is made (a stale report).
  void set_frozen(bool frozen);
  // The next reports' runtime data names this key as HCLAkPub instead of the real AK (a forgery
  // test: the quote then comes from a key the report does not vouch for); nullopt: the real AK.
  void set_runtime_ak(std::optional<tpm::AkPublicKey> ak);
  int reports_made() const;

 private:
  struct Impl;
  explicit AzureParavisor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The TD quote a TD quoting service would give for `td_report` (a 1024-byte TDREPORT as the
// stand-in above makes): REPORTDATA, MRTD and ATTRIBUTES taken from it, signed by `signer` with
// attest::testing::DefaultTestQuoteSpec().
class SoftwareTdxSigner;
absl::StatusOr<std::vector<uint8_t>> QuoteTdReport(const SoftwareTdxSigner& signer,
                                                   std::span<const uint8_t> td_report);

// Creates the paravisor's AK in swtpm (a restricted RSA-2048 RSASSA/SHA-256 signing primary in
// the endorsement hierarchy, made persistent at 0x81000003) with tpm2-tools, and returns it.
absl::StatusOr<tpm::AkPublicKey> CreateAzureAk(const std::string& swtpm_tcti,
                                               const std::string& work_dir);

}  // namespace attest::testing

#endif  // TESTS_TESTING_AZURE_PARAVISOR_H_
