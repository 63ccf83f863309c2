// TDX quote verification: quote signature, QE report binding and signature, PCK chain to the Intel
// SGX Root CA (optional CRLs), PCK SGX extensions, Intel collateral (TCB info and QE identity:
// signatures, validity, FMSPC/PCE-ID, TCB level and QE identity evaluation) and the TD policy.
// Without collateral the result fails closed (check "tdx.tcb") unless `skip_tcb` is set.
#ifndef ATTEST_TDX_VERIFY_H_
#define ATTEST_TDX_VERIFY_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>
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

// Reuse of verified PCK chains and collateral across quotes (many quotes from one platform share
// them). Keyed by the exact bytes and the trust inputs; an entry is used only while the
// verification time is inside the validity of everything it covers. Thread-safe.
class VerificationCache {
 public:
  VerificationCache();
  ~VerificationCache();
  size_t size() const;

  struct Impl;  // defined in verify.cc only
  Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

struct Policy {
  bool allow_debug = false;
  bool skip_tcb = false;
  std::optional<std::vector<uint8_t>> mrtd, mrconfigid, mrowner, report_data;  // 48, 48, 48, 64
  std::map<int, std::vector<uint8_t>> rtmr;  // index 0-3 → 48 bytes
};

// Intel collateral as received: the documents' text (signatures cover exact bytes) and the TCB
// signing chain (TCB Signing certificate, then the root).
struct Collateral {
  std::string tcb_info_json;
  std::optional<std::string> qe_identity_json;  // absent: the QE check is NotEvaluated
  std::vector<std::vector<uint8_t>> tcb_signing_chain_der;
};

struct Options : VerifyOptions {
  Policy policy;
  std::optional<Collateral> collateral;  // required unless policy.skip_tcb
  std::vector<std::string> accepted_tcb_statuses = {"UpToDate"};
  // When given: the ACPI CCEL table and the CC event log, replayed and compared with RTMR0-3.
  std::optional<std::vector<uint8_t>> ccel_table;
  std::optional<std::vector<uint8_t>> ccel_log;
  std::shared_ptr<VerificationCache> cache;             // optional
  std::vector<std::vector<uint8_t>> trust_anchors_der;  // empty: the built-in Intel SGX Root CA
  std::vector<std::vector<uint8_t>> crls_der;           // root CA CRL, PCK CRL
  bool require_crl = false;
};

struct VerifiedQuote {
  Quote quote;
  PckExtensions pck;
  std::string tcb_status = "NotEvaluated";
  std::string qe_tcb_status = "NotEvaluated";
  std::optional<std::string> tdx_module_status;
  std::vector<std::string> advisory_ids;
  std::optional<size_t> ccel_events;  // events in the CCEL, when one was given
};

absl::StatusOr<VerifiedQuote> VerifyQuote(std::span<const uint8_t> bytes, const Options& options,
                                          CheckLog* log = nullptr);

// The built-in Intel SGX Root CA (DER), checked against its pinned SHA-256.
absl::StatusOr<std::vector<uint8_t>> BuiltinIntelSgxRootDer();

// SHA-256 of the built-in Intel SGX Root CA, pinned.
inline constexpr char kIntelSgxRootCaSha256[] =
    "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3";

}  // namespace attest::tdx

#endif  // ATTEST_TDX_VERIFY_H_
