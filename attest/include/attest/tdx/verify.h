// TDX quote verification, first part: quote signature, QE report binding and signature, PCK chain
// to the Intel SGX Root CA (optional CRLs), PCK SGX extensions, TD policy. TCB evaluation against
// Intel collateral (TCB info, QE identity) is not implemented yet: without `skip_tcb` the result
// fails closed with check "tdx.tcb".
#ifndef ATTEST_TDX_VERIFY_H_
#define ATTEST_TDX_VERIFY_H_

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attest/check.h"
#include "attest/tdx/quote.h"
#include "attest/verify_options.h"

namespace attest::tdx {

// The Intel SGX extension of a PCK certificate (OID 1.2.840.113741.1.13.1).
struct PckExtensions {
  std::vector<uint8_t> ppid;
  std::array<uint8_t, 16> tcb_components{};  // SGX TCB comp 1-16 SVNs
  uint32_t pcesvn = 0;
  std::vector<uint8_t> cpusvn;
  std::vector<uint8_t> pce_id;  // 2 bytes
  std::vector<uint8_t> fmspc;   // 6 bytes
};

// Decodes the extension of a DER certificate with OpenSSL's ASN.1 decoders.
absl::StatusOr<PckExtensions> ParsePckExtensions(std::span<const uint8_t> cert_der);

struct Policy {
  bool allow_debug = false;
  bool skip_tcb = false;
  std::optional<std::vector<uint8_t>> mrtd, mrconfigid, mrowner, report_data;  // 48, 48, 48, 64
  std::map<int, std::vector<uint8_t>> rtmr;  // index 0-3 → 48 bytes
};

struct Options : VerifyOptions {
  Policy policy;
  std::vector<std::vector<uint8_t>> trust_anchors_der;  // empty: the built-in Intel SGX Root CA
  std::vector<std::vector<uint8_t>> crls_der;           // root CA CRL, PCK CRL
  bool require_crl = false;
};

struct VerifiedQuote {
  Quote quote;
  PckExtensions pck;
  std::string tcb_status;  // "NotEvaluated" (collateral support is not implemented yet)
};

absl::StatusOr<VerifiedQuote> VerifyQuote(std::span<const uint8_t> bytes, const Options& options,
                                          CheckLog* log = nullptr);

// SHA-256 of the built-in Intel SGX Root CA, pinned.
inline constexpr char kIntelSgxRootCaSha256[] =
    "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3";

}  // namespace attest::tdx

#endif  // ATTEST_TDX_VERIFY_H_
