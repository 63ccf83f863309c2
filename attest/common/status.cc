#include "attest/status.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace attest {

absl::Status VerificationFailed(absl::string_view check, absl::string_view detail) {
  return absl::PermissionDeniedError(absl::StrCat(check, ": ", detail));
}

bool IsVerificationFailure(const absl::Status& status) {
  return status.code() == absl::StatusCode::kPermissionDenied;
}

int ExitCodeFor(const absl::Status& status) {
  if (status.ok()) return 0;
  return IsVerificationFailure(status) ? 1 : 2;
}

}  // namespace attest
