// The appliance's updater (issue 8 item 4; `appliance-update`, docs/release-channel.md): the TUF
// client from the image's trusted root, the channel's policy, the vTPM release counter and the
// A/B slot writer, in that order.
//   status   the running release (the slot whose UUID the booted roothash= names), the committed
//            release (vTPM NV counter), the boot entries, the newest release the channel offers
//   install  refresh the channel; pick the newest release for this hardware (targets of one
//            release_version with kinds uki, root and verity; the root target's custom.roothash);
//            refuse it below the channel's minimum, revoked, or below the vTPM counter; download
//            (lengths and hashes as signed); write it to the inactive slot with 3 boot tries
//   revocations  refresh the channel and write its client-revocation list (the signed target
//            client-revocations.json; an empty list when the channel has none) to
//            `revocations_file`, checked and replaced atomically: the supervisor applies it
//            (attest/tuf/client_revocations.h)
//   commit   after the running release reached READY (systemd-bless-boot has dropped its counter):
//            raise the vTPM counter to it, so nothing older installs again
#ifndef SUPERVISOR_UPDATER_H_
#define SUPERVISOR_UPDATER_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace appliance::supervisor {

struct UpdaterOptions {
  std::filesystem::path metadata_dir;  // trusted TUF metadata (root.json from the image first)
  std::filesystem::path trusted_root;  // the image's root.json, used if metadata_dir has none
  std::string metadata_url;            // the repository (http:// or a directory)
  std::string targets_url;             // default: metadata_url + "/targets"
  std::string hardware;                // this appliance's hardware id
  std::string image_name = "appliance";
  std::filesystem::path disk;  // the boot disk (GPT); "auto": the disk of the booted root
  std::filesystem::path esp;   // the mounted ESP
  std::filesystem::path cmdline = "/proc/cmdline";
  std::filesystem::path work_dir;  // downloads (default: a fresh directory under /var/tmp)
  std::string tcti;                // the vTPM (empty: no local anti-rollback)
  std::string ca_file;             // HTTPS trust anchors (empty: the system's)
  std::string sfdisk = "/usr/sbin/sfdisk";
  uint32_t tries = 3;
  std::filesystem::path revocations_file;  // revocations: where the supervisor reads the list
  // A coordinator-supplied signed time (RFC 3161 response) and the TSA certificates to check it
  // with (attest/tuf/signed_time.h): expiry is also checked against it.
  std::filesystem::path signed_time, tsa_ca;
};

// Each returns a JSON report; FailedPrecondition / PermissionDenied name a refused check.
absl::StatusOr<nlohmann::json> UpdaterStatus(const UpdaterOptions& o);
absl::StatusOr<nlohmann::json> UpdaterInstall(const UpdaterOptions& o);
absl::StatusOr<nlohmann::json> UpdaterCommit(const UpdaterOptions& o);
absl::StatusOr<nlohmann::json> UpdaterRevocations(const UpdaterOptions& o);

}  // namespace appliance::supervisor

#endif  // SUPERVISOR_UPDATER_H_
