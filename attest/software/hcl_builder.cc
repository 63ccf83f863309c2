#include "hcl_builder.h"

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "attest/encoding.h"
#include "attest/tpm/hash_alg.h"
#include "tpm_signer.h"

namespace attest::testing {

std::string AzureRuntimeData(const tpm::AkPublicKey& ak, std::span<const uint8_t> user_data) {
  std::string keys = RsaJwkSet("HCLAkPub", ak);  // {"keys":[...],"vm-configuration":{}}
  const std::string empty_config = R"("vm-configuration":{}})";
  keys.resize(keys.size() - empty_config.size());
  return absl::StrCat(keys, R"("vm-configuration":{"console-enabled":false,"secure-boot":true,)",
                      R"("tpm-enabled":true,"tpm-persisted":true},"user-data":")",
                      absl::AsciiStrToUpper(HexEncode(user_data)), "\"}");
}

std::array<uint8_t, 64> HclReportData(const std::string& runtime_data) {
  std::array<uint8_t, 64> out{};
  auto digest = tpm::Hash(
      tpm::kAlgSha256,
      std::span(reinterpret_cast<const uint8_t*>(runtime_data.data()), runtime_data.size()));
  std::copy(digest->begin(), digest->end(), out.begin());
  return out;
}

absl::StatusOr<std::vector<uint8_t>> BuildHclReport(uint32_t report_type,
                                                    std::span<const uint8_t> hardware_report,
                                                    const std::string& runtime_data) {
  constexpr size_t kHardwareOffset = 0x20, kRuntimeHeader = 0x4C0, kRuntimeData = 0x4D4;
  const size_t hw_size = report_type == 2 ? 1184 : report_type == 4 ? 1024 : 0;
  if (hw_size == 0 || hardware_report.size() != hw_size) {
    return absl::InvalidArgumentError(absl::StrCat("HCL report: report type ", report_type,
                                                   " with a ", hardware_report.size(),
                                                   "-byte hardware report"));
  }
  if (kRuntimeData + runtime_data.size() > kHclReportSize) {
    return absl::InvalidArgumentError("HCL report: runtime data too large");
  }
  std::vector<uint8_t> hcl(kHclReportSize, 0);
  std::memcpy(hcl.data(), "HCLA", 4);
  hcl[4] = 2;  // HCL report version
  std::copy(hardware_report.begin(), hardware_report.end(), hcl.begin() + kHardwareOffset);
  auto put32 = [&](size_t off, uint32_t v) {
    for (size_t i = 0; i < 4; ++i) hcl[off + i] = static_cast<uint8_t>(v >> (8 * i));
  };
  put32(kRuntimeHeader, static_cast<uint32_t>(runtime_data.size() + 20));
  put32(kRuntimeHeader + 4, 1);  // runtime-data version
  put32(kRuntimeHeader + 8, report_type);
  put32(kRuntimeHeader + 12, 1);  // SHA-256
  put32(kRuntimeHeader + 16, static_cast<uint32_t>(runtime_data.size()));
  std::copy(runtime_data.begin(), runtime_data.end(), hcl.begin() + kRuntimeData);
  return hcl;
}

}  // namespace attest::testing
