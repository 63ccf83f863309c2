// Precomputed boot measurements of the appliance image (issue 7): what OVMF, systemd-boot,
// systemd-stub, the Linux EFI stub and systemd-pcrphase extend into the vTPM's PCRs when the
// image boots, computed from the built artifacts alone, the way the firmware and systemd-measure
// do. A coordinator compares them with a quote (attest/evidence.h) and, on a mismatch, names the
// first event of the firmware log that differs from the expected event list.
//
//   PCR 4   EV_EFI_ACTION "Calling EFI Application from Boot Option", EV_SEPARATOR, then the
//           Authenticode digest of every EFI application started: systemd-boot, the UKI, and
//           the kernel systemd-stub starts from the UKI's .linux section;
//   PCR 7   the Secure Boot configuration (SecureBoot, PK, KEK, db, dbx as UEFI_VARIABLE_DATA)
//           and EV_SEPARATOR: here Secure Boot off with no keys enrolled (OVMF's empty varstore);
//   PCR 9   what the Linux EFI stub measures: the initrd it loads ("Linux initrd") and its load
//           options;
//   PCR 11  systemd-stub: for each UKI section present (.linux, .osrel, .cmdline, .initrd,
//           .splash, .dtb, .pcrpkey) the section name with its NUL, then the section's bytes;
//           then systemd-pcrphase's boot phases, each the digest of the phase word;
//   PCR 12  systemd-stub: a command line passed to the UKI instead of its own, credentials and
//           system extensions from the ESP: none in the appliance, so PCR 12 stays zero.
#ifndef ATTEST_BOOT_BOOT_PCRS_H_
#define ATTEST_BOOT_BOOT_PCRS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attest/check.h"
#include "attest/tpm/eventlog.h"
#include "attest/tpm/hash_alg.h"

namespace attest::boot {

// systemd 252's phase words, in boot order (systemd-pcrphase*.service).
inline const std::vector<std::string>& DefaultPcr11Phases() {
  static const std::vector<std::string> phases = {"enter-initrd", "leave-initrd", "sysinit",
                                                  "ready"};
  return phases;
}

// The PCRs the reference values pin for the appliance image.
inline constexpr uint32_t kBootPcrs[] = {4, 7, 9, 11, 12};

struct ExpectedEvent {
  uint32_t pcr = 0;
  uint32_t type = 0;  // TCG event type (EV_*); 0 for systemd-pcrphase (not in the firmware log)
  std::string what;   // human description: "systemd-boot (Authenticode)", ".cmdline", ...
  std::map<uint16_t, std::vector<uint8_t>> digests;  // bank → digest extended
};

struct BootPrediction {
  std::vector<ExpectedEvent> events;  // in extend order per PCR
  tpm::PcrBanks pcrs;                 // final values of kBootPcrs per bank
};

struct BootArtifacts {
  std::span<const uint8_t> boot_loader;  // \EFI\BOOT\BOOTX64.EFI (systemd-boot)
  std::span<const uint8_t> uki;          // the UKI systemd-boot starts
  std::vector<std::string> pcr11_phases = DefaultPcr11Phases();
};

// Only the UKI part (PCR 11 sections and phases), as systemd-measure calculates it.
absl::StatusOr<std::vector<ExpectedEvent>> PredictUkiPcr11(std::span<const uint8_t> uki,
                                                           const std::vector<std::string>& phases,
                                                           const std::vector<uint16_t>& banks);

absl::StatusOr<BootPrediction> PredictBoot(const BootArtifacts& artifacts,
                                           const std::vector<uint16_t>& banks);

// "EV_EFI_ACTION", ... as tpm::EventTypeName prints them, and "systemd-pcrphase" for 0.
std::string ExpectedEventTypeName(uint32_t type);
absl::StatusOr<uint32_t> ExpectedEventTypeFromName(const std::string& name);

// Replays expected events into PCR values (PCRs start at zero).
absl::StatusOr<tpm::PcrBanks> ReplayExpected(const std::vector<ExpectedEvent>& events,
                                             const std::vector<uint16_t>& banks);

// PCR 11 (bank `alg`) after the firmware-logged events (`value`), extended with `phases` in order.
absl::StatusOr<std::vector<uint8_t>> ExtendPcr11Phases(uint16_t alg, std::vector<uint8_t> value,
                                                       const std::vector<std::string>& phases);

// For a quoted PCR 11 that is not the firmware log's replay plus every phase: the subsequence of
// `phases` (order kept; at most 2^10 tried) that explains it, or nullopt. systemd-pcrphase
// measures each phase from its own unit; a unit that did not measure (skipped, failed, a boot that
// stopped in the initrd) leaves exactly such a gap.
absl::StatusOr<std::optional<std::vector<std::string>>> Pcr11PhasesThatExplain(
    uint16_t alg, const std::vector<uint8_t>& firmware_pcr11, const std::vector<uint8_t>& quoted,
    const std::vector<std::string>& phases);

// Explains why a quoted PCR differs from its expected value: the first position where the firmware
// log's events on that PCR (bank `alg`) differ from the expected events, e.g.
// "event #27 EV_IPL '.cmdline' has sha256 ab12… where the reference expects cd34…". Events the
// log does not record (PCR 11 boot phases) are compared after the log's own.
std::string ExplainPcrMismatch(const tpm::EventLog* log, uint32_t pcr, uint16_t alg,
                               const std::vector<ExpectedEvent>& expected);

}  // namespace attest::boot

#endif  // ATTEST_BOOT_BOOT_PCRS_H_
