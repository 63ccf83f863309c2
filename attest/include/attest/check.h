// The record of a verification: every check that ran, in order, with its outcome.
#ifndef ATTEST_CHECK_H_
#define ATTEST_CHECK_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace attest {

struct Check {
  std::string name;  // stable identifier, e.g. "snp.signature", "snp.policy.debug"
  bool ok = false;
  std::string detail;  // what was compared, with both values
};

class CheckLog {
 public:
  // Records a passed check.
  void Pass(absl::string_view name, std::string detail = {});
  // Records a failed check and returns VerificationFailed(name, detail).
  absl::Status Fail(absl::string_view name, std::string detail);
  // Pass or Fail depending on `ok`; returns OK or the failure.
  absl::Status Expect(bool ok, absl::string_view name, std::string detail);

  const std::vector<Check>& checks() const { return checks_; }
  bool all_ok() const;
  // The first failed check, or nullptr.
  const Check* first_failure() const;

 private:
  std::vector<Check> checks_;
};

}  // namespace attest

#endif  // ATTEST_CHECK_H_
