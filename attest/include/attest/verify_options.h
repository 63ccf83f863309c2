// Options shared by every verifier: the injected clock. Per-platform option structs embed it
// and add their trust anchors, collateral and policy.
#ifndef ATTEST_VERIFY_OPTIONS_H_
#define ATTEST_VERIFY_OPTIONS_H_

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace attest {

struct VerifyOptions {
  // Verification time; unset means the real clock. Certificates, CRLs and collateral are
  // checked against it.
  std::optional<absl::Time> now;

  absl::Time Now() const { return now.value_or(absl::Now()); }
};

// RFC 3339 ("2025-06-01T00:00:00Z"); a bare date ("2025-06-01") means midnight UTC.
absl::StatusOr<absl::Time> ParseRfc3339(absl::string_view text);
std::string FormatRfc3339(absl::Time t);

}  // namespace attest

#endif  // ATTEST_VERIFY_OPTIONS_H_
