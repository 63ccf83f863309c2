// A signed time for the release channel's expiry checks (issue 8 item 6; docs/release-channel.md
// "Time"): an RFC 3161 time-stamp response (TimeStampResp, DER: what a time-stamping authority
// returns to `openssl ts -query … | curl --data-binary @- -H 'Content-Type:
// application/timestamp-query' TSA`), checked against the TSA certificates a coordinator trusts.
// The TUF client then checks expiry against max(clock, floor, signed time): a signed time can
// only move "now" forward, so an old (replayed) response is harmless, and a host that set the
// clock back cannot make expired metadata look valid to a client that has a recent one.
#ifndef ATTEST_TUF_SIGNED_TIME_H_
#define ATTEST_TUF_SIGNED_TIME_H_

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace attest::tuf {

inline constexpr size_t kMaxTimeStampResponse = 64 * 1024;

struct SignedTime {
  absl::Time time;     // the token's genTime
  std::string tsa;     // the signer certificate's subject
  std::string policy;  // the TSA policy OID, dotted
};

// Parses (bounded, exactly one DER TimeStampResp), requires status granted (or granted with
// modifications), then verifies the token's CMS signature, that the signer certificate is a
// time-stamping certificate (extended key usage timeStamping, critical) chaining to one of
// `tsa_roots_pem` at the token's own time, and the token version. InvalidArgument for bytes that
// are not a response; PermissionDenied ("time.signed: …") for one that does not verify.
absl::StatusOr<SignedTime> VerifySignedTime(std::span<const uint8_t> tsr_der,
                                            std::string_view tsa_roots_pem);
// The same from files (what --signed-time TSR --tsa-ca PEM name), each read bounded.
absl::StatusOr<SignedTime> VerifySignedTimeFiles(const std::filesystem::path& tsr,
                                                 const std::filesystem::path& tsa_roots_pem);

}  // namespace attest::tuf

#endif  // ATTEST_TUF_SIGNED_TIME_H_
