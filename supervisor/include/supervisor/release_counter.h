// Local anti-rollback of releases (issue 8 item 5a; docs/release-channel.md): the highest
// release an appliance has committed (booted to READY) is kept in a vTPM NV counter, which only
// ever goes up. An update to a release below it is refused, also after the disk was reset, as
// long as the vTPM's state persists. (Many confidential-VM vTPMs lose their NV state on reboot:
// the channel's signed minimum release version, checked by coordinators, is the second layer.)
#ifndef SUPERVISOR_RELEASE_COUNTER_H_
#define SUPERVISOR_RELEASE_COUNTER_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "supervisor/tpm.h"

namespace appliance::supervisor {

// In the owner range of the TCG handle registry (0x01800000-0x01BFFFFF); configurable.
inline constexpr uint32_t kReleaseCounterIndex = 0x01800A11;

class ReleaseCounter {
 public:
  explicit ReleaseCounter(Tpm& tpm, uint32_t index = kReleaseCounterIndex, uint64_t max_step = 4096)
      : tpm_(tpm), index_(index), max_step_(max_step) {}

  // The highest release committed on this vTPM (0: none yet).
  absl::StatusOr<uint64_t> Committed();
  // PermissionDenied "rollback.tpm_counter: ..." if `release` is below the committed release.
  absl::Status CheckInstallable(uint64_t release);
  // Raises the counter to `release` (nothing to do if it is there already; a release below it is
  // refused as above). The counter moves one increment at a time, at most `max_step` per call.
  // On first use the index is defined; if the TPM starts the new counter above `release` (its
  // counters were used before), the release cannot be represented: FailedPrecondition.
  absl::Status Commit(uint64_t release);

 private:
  Tpm& tpm_;
  uint32_t index_;
  uint64_t max_step_;
};

}  // namespace appliance::supervisor

#endif  // SUPERVISOR_RELEASE_COUNTER_H_
