// Platform evidence producers (issue 5 item 4, DESIGN §6): one interface, one implementation per
// way a guest obtains a hardware report. Each fills the `platform` oneof of an
// appliance.v1.Evidence with a fresh report whose report data is the caller's (SHA-512 of the
// binding).
#ifndef SUPERVISOR_PLATFORM_H_
#define SUPERVISOR_PLATFORM_H_

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "supervisor/runtime_log.h"

namespace appliance::v1 {
class Evidence;
}

namespace appliance::supervisor {

using ReportData = std::array<uint8_t, 64>;

class EvidenceProducer {
 public:
  virtual ~EvidenceProducer() = default;
  virtual std::string name() const = 0;
  virtual absl::Status Produce(const ReportData& report_data, appliance::v1::Evidence& out) = 0;
};

// SEV-SNP or TDX through configfs-tsm (Linux ≥ 6.7): a report entry is created under `root`,
// `inblob` written, `outblob` (and for SNP `auxblob`, the certificate table) read, the entry's
// `generation` checked to be unchanged (no concurrent writer), and the entry removed.
// `provider`: "sev_guest" or "tdx_guest" (the entry's `provider` file must say so).
absl::StatusOr<std::unique_ptr<EvidenceProducer>> MakeConfigfsTsmProducer(
    std::string provider, std::filesystem::path root = "/sys/kernel/config/tsm/report");

// SEV-SNP through the /dev/sev-guest ioctl (SNP_GET_EXT_REPORT, then SNP_GET_REPORT when the host
// offers no certificates): the fallback for kernels without configfs-tsm.
absl::StatusOr<std::unique_ptr<EvidenceProducer>> MakeSevGuestProducer(
    std::filesystem::path device = "/dev/sev-guest");

// The first SNP producer this guest offers: configfs-tsm, then /dev/sev-guest.
absl::StatusOr<std::unique_ptr<EvidenceProducer>> ProbeSnpProducer();

// SoftwareSnpSigner (attest/software): reports in the exact hardware format, signed by a test
// hierarchy generated in memory at start. Its ARK is written as `snp_ark.pem` into
// `roots_out_dir` so that a verifier can be given it explicitly (it is never trusted by default).
struct SoftwareSnpOptions {
  std::array<uint8_t, 48> measurement{};  // what the launch digest would be
  std::array<uint8_t, 32> host_data{};    // SHA-256 of the launch configuration
  uint64_t policy = 0x30000;              // SMT allowed; set bit 19 for a debug guest
  std::filesystem::path roots_out_dir;
  int rsa_bits = 4096;
  bool vlek = false;  // sign with a VLEK (chip id zero, ASVK chain), as on AWS
};
absl::StatusOr<std::unique_ptr<EvidenceProducer>> MakeSoftwareSnpProducer(
    const SoftwareSnpOptions& options);

// SoftwareTdxSigner (attest/software): TD quotes v4 in the exact DCAP format, signed by a test
// PCK hierarchy generated in memory at start. RTMR3 is what `rtmr3` holds (the runtime log's
// software register, as a TDX kernel with RTMR extend would have it). Written into
// `roots_out_dir`: `tdx_root.pem` and `tdx-collateral/` (tcb_info.json, qe_identity.json,
// tcb_info_issuer_chain.pem: TCB info and QE identity signed by the test TCB signing key, valid
// from a day before start for 30 days).
struct SoftwareTdxOptions {
  std::array<uint8_t, 48> mrtd{};        // what the TD's build-time measurement would be
  std::array<uint8_t, 48> mrconfigid{};  // SHA-384 of the launch configuration
  std::shared_ptr<SoftwareRegister> rtmr3;
  bool debug = false;
  std::filesystem::path roots_out_dir;
};
absl::StatusOr<std::unique_ptr<EvidenceProducer>> MakeSoftwareTdxProducer(
    const SoftwareTdxOptions& options);

class Tpm;

// Azure's paravisor (issue 11, docs/cloud.md): the guest cannot choose the hardware report's data.
// The report data the caller gives (SHA-512 of the binding) is written as the 64 bytes of user
// data to the vTPM NV index 0x01400002 (defined first when absent); the paravisor then puts a
// fresh HCL report into NV index 0x01400001 whose runtime data carries that user data and the AK
// (HCLAkPub, persistent at 0x81000003: `tpm` must have been opened with it). The report is read
// back until its user data is ours (at most `max_polls` reads, `poll_interval` apart; a stale
// report is an error, never evidence). SNP form: `vcek_der` (Azure serves it from its THIM
// endpoint, docs/cloud.md) travels with the report when given. TDX form: `td_quote_service`
// turns the HCL report's TDREPORT into a TD quote (nullptr: TDX is refused).
class TdQuoteService {
 public:
  virtual ~TdQuoteService() = default;
  virtual absl::StatusOr<std::vector<uint8_t>> Quote(std::span<const uint8_t> td_report) = 0;
};
struct AzureOptions {
  std::shared_ptr<Tpm> tpm;
  std::vector<uint8_t> vcek_der;
  std::vector<std::vector<uint8_t>> chain_der;  // ASK, ARK (optional)
  // Where the VCEK chain comes from when `vcek_der` is empty (a placed file, THIM): called once
  // at start, and only when the paravisor's HCL report is an SNP report (a TD quote needs no
  // VCEK). Returns the VCEK, then ASK and ARK when known; empty when none was found; an error
  // (a placed file that does not parse) stops the start.
  std::function<absl::StatusOr<std::vector<std::vector<uint8_t>>>()> snp_chain;
  std::shared_ptr<TdQuoteService> td_quote_service;
  int max_polls = 50;
  int poll_interval_ms = 20;
};
absl::StatusOr<std::unique_ptr<EvidenceProducer>> MakeAzureProducer(AzureOptions options);

// The platform this guest offers (launch config "platform": "auto"): "azure" when `tpm` (may be
// null) answers for the HCL report index 0x01400001 with an HCL report, else "snp" or "tdx" from
// configfs-tsm's provider under `tsm_root`, else "snp" when `sev_guest` exists. NotFound when
// none: the supervisor never falls back to vtpm-only by itself.
absl::StatusOr<std::string> ProbePlatform(
    Tpm* tpm, const std::filesystem::path& tsm_root = "/sys/kernel/config/tsm/report",
    const std::filesystem::path& sev_guest = "/dev/sev-guest");

// No hardware report: `vtpm_only` (a verifier accepts it only when its policy names it).
std::unique_ptr<EvidenceProducer> MakeVtpmOnlyProducer();

}  // namespace appliance::supervisor

#endif  // SUPERVISOR_PLATFORM_H_
