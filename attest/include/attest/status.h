// Error handling for libattest: absl::Status / absl::StatusOr everywhere a call can fail.
//
// Two kinds of failure matter to callers and to the CLI's exit codes:
//  - malformed or unreadable input (kInvalidArgument, kNotFound, kOutOfRange, ...): exit 2;
//  - a verification or policy check that failed on well-formed input (kPermissionDenied,
//    made only by VerificationFailed()): exit 1.
#ifndef ATTEST_STATUS_H_
#define ATTEST_STATUS_H_

#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#define ATTEST_STATUS_CONCAT_INNER_(a, b) a##b
#define ATTEST_STATUS_CONCAT_(a, b) ATTEST_STATUS_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::absl::Status attest_status_ = (expr);          \
    if (!attest_status_.ok()) return attest_status_; \
  } while (0)

#define ASSIGN_OR_RETURN(lhs, rexpr) \
  ATTEST_ASSIGN_OR_RETURN_IMPL_(ATTEST_STATUS_CONCAT_(attest_statusor_, __LINE__), lhs, rexpr)

#define ATTEST_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                  \
  if (!tmp.ok()) return std::move(tmp).status();       \
  lhs = std::move(tmp).value()

namespace attest {

// A failed verification or policy check: "<check>: <detail>".
absl::Status VerificationFailed(absl::string_view check, absl::string_view detail);

// True for statuses made by VerificationFailed().
bool IsVerificationFailure(const absl::Status& status);

// The CLI exit code for a status: 0 ok, 1 verification failure, 2 anything else.
int ExitCodeFor(const absl::Status& status);

}  // namespace attest

#endif  // ATTEST_STATUS_H_
