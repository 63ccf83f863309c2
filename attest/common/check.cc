#include "attest/check.h"

#include <algorithm>

#include "absl/strings/string_view.h"
#include "attest/status.h"

namespace attest {

void CheckLog::Pass(absl::string_view name, std::string detail) {
  checks_.push_back(Check{std::string(name), true, std::move(detail)});
}

absl::Status CheckLog::Fail(absl::string_view name, std::string detail) {
  absl::Status status = VerificationFailed(name, detail);
  checks_.push_back(Check{std::string(name), false, std::move(detail)});
  return status;
}

absl::Status CheckLog::Expect(bool ok, absl::string_view name, std::string detail) {
  if (ok) {
    Pass(name, std::move(detail));
    return absl::OkStatus();
  }
  return Fail(name, std::move(detail));
}

bool CheckLog::all_ok() const {
  return std::all_of(checks_.begin(), checks_.end(), [](const Check& c) { return c.ok; });
}

const Check* CheckLog::first_failure() const {
  for (const Check& c : checks_) {
    if (!c.ok) return &c;
  }
  return nullptr;
}

}  // namespace attest
