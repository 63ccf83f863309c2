// The evidence binding (DESIGN §3): one versioned definition shared by the supervisor, which puts
// it into the hardware report and the TPM quote, and by verifiers, which recompute it.
//
//   binding = "appliance-binding-v1" || u8 count || count × (u8 len || label || SHA-256(value))
//
// Entries are sorted by label (byte order), labels are unique and known: `nonce`, `tls-spki` (the
// server certificate's SubjectPublicKeyInfo DER), and where present `ak` (TPMT_PUBLIC),
// `runtime-log` (the CEL log bytes), `key-request` (an ephemeral public key for key release).
// SNP REPORT_DATA and TDX REPORTDATA hold SHA-512(binding); a TPM quote's qualifying data is
// SHA-256(binding).
#ifndef ATTEST_BINDING_H_
#define ATTEST_BINDING_H_

#include <array>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "attest/check.h"

namespace attest {

inline constexpr char kBindingPrefixV1[] = "appliance-binding-v1";
inline constexpr uint32_t kBindingVersion = 1;

// The labels a v1 binding may carry, in their sorted order.
inline constexpr const char* kBindingLabels[] = {"ak", "key-request", "nonce", "runtime-log",
                                                 "tls-spki"};

class Binding {
 public:
  using Digest = std::array<uint8_t, 32>;

  // From values (hashed here). Fails on an unknown label or a missing `nonce` / `tls-spki`.
  static absl::StatusOr<Binding> FromValues(
      const std::map<std::string, std::vector<uint8_t>>& values);
  // From (label, SHA-256) entries as carried in an Evidence bundle: labels known and unique,
  // `nonce` and `tls-spki` present, each digest 32 bytes. Order does not matter here; the encoding
  // sorts them.
  static absl::StatusOr<Binding> FromEntries(
      const std::vector<std::pair<std::string, std::vector<uint8_t>>>& entries);

  const std::map<std::string, Digest>& entries() const { return entries_; }
  std::vector<uint8_t> Encode() const;
  std::array<uint8_t, 64> ReportData() const;      // SHA-512(Encode())
  std::array<uint8_t, 32> QualifyingData() const;  // SHA-256(Encode())

 private:
  std::map<std::string, Digest> entries_;  // std::map: sorted by label, byte order
};

// A verifier's check: every value it knows (nonce it sent, SPKI it saw, AK, log it received) must
// hash to the claimed entry, and the claimed entries must be exactly the expected labels. Fails
// naming the entry ("binding.<label>") with both digests.
absl::Status CheckBinding(const Binding& claimed,
                          const std::map<std::string, std::vector<uint8_t>>& expected_values,
                          CheckLog& log);

}  // namespace attest

#endif  // ATTEST_BINDING_H_
