#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "attest/verify_options.h"

namespace attest {

absl::StatusOr<absl::Time> ParseRfc3339(absl::string_view text) {
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, text, &t, &err)) return t;
  if (absl::ParseTime("%Y-%m-%d", text, absl::UTCTimeZone(), &t, &err)) return t;
  return absl::InvalidArgumentError(
      absl::StrCat("time '", text, "' is not RFC 3339 (e.g. 2025-06-01T00:00:00Z)"));
}

std::string FormatRfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

}  // namespace attest
