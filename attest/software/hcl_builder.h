// Azure HCL reports as Microsoft's paravisor writes them into the vTPM NV index 0x01400001,
// built around a hardware report from a software signer (TEST: never from a real paravisor). The
// layout is attest/azure/azure.h's: "HCLA" header, hardware report at 0x20, runtime-data header at
// 0x4C0, runtime data (JSON) at 0x4D4, 2600 bytes in all.
#ifndef ATTEST_SOFTWARE_HCL_BUILDER_H_
#define ATTEST_SOFTWARE_HCL_BUILDER_H_

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attest/tpm/ak.h"

namespace attest::testing {

inline constexpr size_t kHclReportSize = 2600;

// The runtime data: {"keys":[HCLAkPub as an RSA JWK], "vm-configuration":{...},
// "user-data":"<128 hex digits>"} (upper-case hex, as Azure writes it).
std::string AzureRuntimeData(const tpm::AkPublicKey& ak, std::span<const uint8_t> user_data);

// The report data a hardware report must carry for `runtime_data`: SHA-256(runtime data) || zeros.
std::array<uint8_t, 64> HclReportData(const std::string& runtime_data);

// The HCL report (report type 2 = SNP with a 1184-byte report, 4 = TDX with a 1024-byte TDREPORT;
// hash type 1 = SHA-256). InvalidArgument when the parts do not fit.
absl::StatusOr<std::vector<uint8_t>> BuildHclReport(uint32_t report_type,
                                                    std::span<const uint8_t> hardware_report,
                                                    const std::string& runtime_data);

}  // namespace attest::testing

#endif  // ATTEST_SOFTWARE_HCL_BUILDER_H_
