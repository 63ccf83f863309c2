#include "supervisor/release_counter.h"

#include "absl/strings/str_cat.h"
#include "attest/status.h"

namespace appliance::supervisor {

absl::StatusOr<uint64_t> ReleaseCounter::Committed() {
  ASSIGN_OR_RETURN(auto value, tpm_.NvCounterRead(index_));
  return value.value_or(0);
}

absl::Status ReleaseCounter::CheckInstallable(uint64_t release) {
  ASSIGN_OR_RETURN(uint64_t committed, Committed());
  if (release < committed) {
    return attest::VerificationFailed(
        "rollback.tpm_counter",
        absl::StrCat("release ", release, " is below release ", committed,
                     " already committed on this vTPM (NV counter 0x", absl::Hex(index_), ")"));
  }
  return absl::OkStatus();
}

absl::Status ReleaseCounter::Commit(uint64_t release) {
  ASSIGN_OR_RETURN(auto value, tpm_.NvCounterRead(index_));
  if (!value) {
    auto st = tpm_.NvCounterDefine(index_);
    if (!st.ok() && !absl::IsAlreadyExists(st)) return st;  // defined, never incremented
    RETURN_IF_ERROR(tpm_.NvCounterIncrement(index_));
    ASSIGN_OR_RETURN(value, tpm_.NvCounterRead(index_));
    if (!value) return absl::InternalError("vTPM: the counter reads as unwritten after increment");
    if (*value > release) {
      return absl::FailedPreconditionError(
          absl::StrCat("the vTPM started the release counter at ", *value,
                       " (its counters were used before), "
                       "above release ",
                       release, ": use another TPM or renumber releases above it"));
    }
  }
  RETURN_IF_ERROR(CheckInstallable(release));
  if (release - *value > max_step_) {
    return absl::InvalidArgumentError(absl::StrCat("release ", release, " is ", release - *value,
                                                   " above the committed ", *value, "; at most ",
                                                   max_step_, " per commit"));
  }
  for (uint64_t v = *value; v < release; ++v) RETURN_IF_ERROR(tpm_.NvCounterIncrement(index_));
  ASSIGN_OR_RETURN(uint64_t now, Committed());
  if (now != release) {
    return absl::InternalError(
        absl::StrCat("vTPM: the counter reads ", now, ", expected ", release));
  }
  return absl::OkStatus();
}

}  // namespace appliance::supervisor
