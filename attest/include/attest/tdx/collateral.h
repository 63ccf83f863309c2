// Intel collateral for TDX quotes: TCB info (v3, id "TDX") and QE identity (v2, id "TD_QE") JSON,
// each signed (ECDSA P-256, hex r||s) over the exact bytes of its object as it appears in the file,
// by the Intel SGX TCB Signing certificate; TCB level and QE identity evaluation.
#ifndef ATTEST_TDX_COLLATERAL_H_
#define ATTEST_TDX_COLLATERAL_H_

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "attest/check.h"
#include "attest/tdx/quote.h"

namespace attest::tdx {

inline constexpr size_t kMaxCollateralSize = 1024 * 1024;

// A signed collateral document: the raw bytes of the signed object, and its signature.
struct SignedObject {
  std::string raw;                 // e.g. the `tcbInfo` value, byte for byte
  std::vector<uint8_t> signature;  // r || s
};
// Extracts `"key": {...}` and `"signature": "hex"` from the document text without re-serializing.
absl::StatusOr<SignedObject> ExtractSignedObject(absl::string_view text, absl::string_view key);

struct TcbLevel {
  std::array<uint8_t, 16> sgx{};
  uint32_t pcesvn = 0;
  std::array<uint8_t, 16> tdx{};
  std::string status;
  std::vector<std::string> advisories;
};

struct ModuleIdentity {
  std::string id;  // "TDX_01", ...
  std::vector<uint8_t> mrsigner;
  uint64_t attributes = 0, attributes_mask = 0;
  std::vector<std::pair<uint32_t, std::string>> levels;  // (isvsvn, status), in order
};

struct TcbInfo {
  std::string id;
  int version = 0;
  absl::Time issue_date, next_update;
  std::vector<uint8_t> fmspc, pce_id;
  std::vector<ModuleIdentity> modules;
  std::vector<TcbLevel> levels;
};
absl::StatusOr<TcbInfo> ParseTcbInfo(absl::string_view raw_object);

struct QeIdentity {
  std::string id;
  int version = 0;
  absl::Time issue_date, next_update;
  uint32_t miscselect = 0, miscselect_mask = 0;
  std::vector<uint8_t> attributes, attributes_mask, mrsigner;
  uint16_t isv_prod_id = 0;
  std::vector<std::pair<uint32_t, std::string>> levels;  // (isvsvn, status)
};
absl::StatusOr<QeIdentity> ParseQeIdentity(absl::string_view raw_object);

struct TcbResult {
  std::string status = "NoMatch";  // the matching level's status, or NoMatch
  std::vector<std::string> advisories;
  std::optional<std::string> module_id, module_status;
};
// The first level whose SGX components and PCESVN are <= the PCK's and whose TDX components are <=
// TEE_TCB_SVN (from index 2 when TEE_TCB_SVN[1] > 0 and the TCB info has TDX module identities;
// the module identity TDX_<TEE_TCB_SVN[1]> then gives the module status from TEE_TCB_SVN[0]).
TcbResult EvaluateTcb(const TcbInfo& info, const std::array<uint8_t, 16>& pck_tcb, uint32_t pcesvn,
                      const std::array<uint8_t, 16>& tee_tcb_svn);

// QE identity against the QE report: MRSIGNER, ISVPRODID, MISCSELECT and ATTRIBUTES under their
// masks; returns the QE TCB status from ISVSVN, or a failed check.
absl::StatusOr<std::string> EvaluateQeIdentity(const QeIdentity& id, const QeReport& qe,
                                               CheckLog& log);

struct Collateral;
// Reads DIR/tcb_info.json, DIR/qe_identity.json (optional) and the TCB signing chain (`chain_pem`,
// or DIR/tcb_info_issuer_chain.pem), the layout of the vectors' collateral folders.
absl::StatusOr<Collateral> LoadCollateralDir(const std::string& dir, const std::string& chain_pem);

}  // namespace attest::tdx

#endif  // ATTEST_TDX_COLLATERAL_H_
