// The channel's client-certificate revocations (issue 8 item 7; docs/release-channel.md): a signed
// target like any release file, so a stolen coordinator key is revoked with the same threshold
// signatures, rollback and freeze protection as a release. The supervisor refuses the revoked
// clients' TLS handshakes and logs the list it applies (runtime event "client-revocations"), so
// a coordinator can see from the evidence that the appliance applies the channel's current list.
//
// Target "client-revocations.json", custom {"kind": "client-revocations"}:
//   {"_type": "client-revocations",
//    "revoked": [{"spki_sha256": "<64 hex digits>", "reason": "<text>"}, ...]}
// The identity is the SHA-256 of the client certificate's SubjectPublicKeyInfo (what launch
// configurations' allowed_clients name): a revoked key stays revoked whatever certificate is
// issued for it.
#ifndef ATTEST_TUF_CLIENT_REVOCATIONS_H_
#define ATTEST_TUF_CLIENT_REVOCATIONS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace attest::tuf {

inline constexpr char kClientRevocationsTarget[] = "client-revocations.json";
inline constexpr char kClientRevocationsKind[] = "client-revocations";
inline constexpr size_t kMaxClientRevocationsFile = 4 << 20;
inline constexpr size_t kMaxClientRevocations = 20000;
inline constexpr size_t kMaxRevocationReason = 256;

struct ClientRevocations {
  std::map<std::string, std::string> revoked;  // SPKI SHA-256 (lower-case hex) → reason
  bool Revoked(const std::string& spki_hex, std::string* reason = nullptr) const;
};

// Bounded and strict: InvalidArgument names the field (an unknown key, a malformed hash, a
// duplicate, more than kMaxClientRevocations entries).
absl::StatusOr<ClientRevocations> ParseClientRevocations(std::span<const uint8_t> bytes);
// The identity a revocation names: SHA-256 of a PEM certificate's SubjectPublicKeyInfo, hex.
absl::StatusOr<std::string> SpkiSha256OfPemCertificate(std::string_view pem);
// Canonical bytes (sorted by hash, one line), what appliance-release publishes.
std::string SerializeClientRevocations(const ClientRevocations& r);

}  // namespace attest::tuf

#endif  // ATTEST_TUF_CLIENT_REVOCATIONS_H_
