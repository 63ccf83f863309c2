// Azure's Instance Metadata Service as the appliance uses it (issue 11, docs/cloud.md), over plain
// HTTP to the link-local address (tests: a loopback server given as `base_url`):
//  - THIM: GET /metadata/THIM/amd/certification with "Metadata: true" → JSON {"vcekCert": PEM,
//    "certificateChain": PEM (ASK, ARK), "tcbm": hex}: the VCEK chain for the HCL report's SNP
//    report (the certificates are verified by the coordinator, not trusted here).
//  - TD quote: POST /acc/tdquote with JSON {"report": base64url(TDREPORT)} → {"quote":
//    base64url(TD quote)}: the quote for the HCL report's TDREPORT.
// One deadline per request; responses bounded (64 KiB); redirects are not followed.
#ifndef SUPERVISOR_AZURE_IMDS_H_
#define SUPERVISOR_AZURE_IMDS_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "supervisor/platform.h"

namespace appliance::supervisor {

inline constexpr char kAzureImdsUrl[] = "http://169.254.169.254";

class AzureImds {
 public:
  explicit AzureImds(std::string base_url = kAzureImdsUrl,
                     absl::Duration timeout = absl::Seconds(10));
  // VCEK, then ASK and ARK (DER).
  absl::StatusOr<std::vector<std::vector<uint8_t>>> VcekChain() const;
  absl::StatusOr<std::vector<uint8_t>> TdQuote(std::span<const uint8_t> td_report) const;

 private:
  absl::StatusOr<std::string> Request(bool post, const std::string& target,
                                      const std::string& body) const;
  std::string host_, port_;
  absl::Duration timeout_;
};

// The responses' parsers (bounded by the request's 64 KiB; fuzzed: tests/fuzz/azure_imds_fuzz.cc):
// THIM's JSON → VCEK, ASK, ARK (DER; at least the VCEK); tdquote's JSON → the quote bytes.
absl::StatusOr<std::vector<std::vector<uint8_t>>> ParseThimResponse(absl::string_view json);
absl::StatusOr<std::vector<uint8_t>> ParseTdQuoteResponse(absl::string_view json);

// The TdQuoteService the Azure producer uses on TDX: the TD quote from IMDS.
std::shared_ptr<TdQuoteService> MakeImdsTdQuoteService(std::shared_ptr<AzureImds> imds);

}  // namespace appliance::supervisor

#endif  // SUPERVISOR_AZURE_IMDS_H_
