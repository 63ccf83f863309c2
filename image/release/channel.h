// The operator's side of the release channel (issue 8; docs/release-channel.md): a work directory
// in which an operator keeps the channel's keys, drafts the next targets, signs TUF metadata
// (thresholds of possibly several people's keys) and publishes to a repository directory, a static
// file tree that any HTTP server or object store can serve. Every published targets version is
// appended to the channel's transparency log first.
//
// Work directory W:
//   channel.json     {"name", "key_type", "expires_days": {role: days}, "keys": {role: [files]},
//                     "log_key": file}: the private key files this operator may use (relative
//                     to W or absolute; offline keys may live elsewhere, and may be absent)
//   keys/            generated keys (encrypted PKCS#8, mode 0600)
//   draft.json       the next targets: {"targets": {name: {length, hashes, custom}},
//                     "custom": {"min_release_version": N, "revoked_releases": [N...]}}
//   targets/NAME     the target files
//   staged/ROLE.json signed (or partly signed) metadata waiting to be published
//   published/ROLE.json   what was last published (the operator's trusted state)
//   log/             the transparency log (image/release/log.h)
// Repository directory R (what clients fetch): N.root.json and root.json, V.targets.json,
// V.snapshot.json (consistent snapshots), timestamp.json, targets/HASH.NAME and targets/NAME,
// log/ (log.json, checkpoint.json, entries/, proofs/, targets/V.json = {"index": I}).
#ifndef IMAGE_RELEASE_CHANNEL_H_
#define IMAGE_RELEASE_CHANNEL_H_

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace appliance::release {

// The roles, top down.
inline constexpr const char* kRoles[] = {"root", "targets", "snapshot", "timestamp"};

struct InitOptions {
  std::filesystem::path workdir;
  std::string name;
  std::string key_type = "ed25519";  // or "ecdsa"
  // Keys to generate per role and the role's threshold (defaults: root 3 keys, threshold 2;
  // the others 1 of 1).
  std::map<std::string, uint32_t> key_counts, thresholds;
  // Existing encrypted key files to use instead of generating: (role, file); a role given here
  // gets only these keys.
  std::vector<std::pair<std::string, std::filesystem::path>> key_files;
  std::map<std::string, uint32_t> expires_days;  // defaults: root 365, targets 90, snapshot 7,
                                                 // timestamp 1
};
absl::Status Init(const InitOptions& o, const std::string& passphrase);

struct TargetOptions {
  std::string name;                         // default: the file's name
  std::optional<std::string> hardware;      // custom.hardware
  std::optional<uint64_t> release_version;  // custom.release_version
  std::optional<std::string> kind;          // custom.kind: uki, root, verity, reference-values,
                                            // sbom, ...
  std::optional<std::string> roothash;      // custom.roothash (root targets): verity root hash
};
absl::Status AddTarget(const std::filesystem::path& workdir, const std::filesystem::path& file,
                       const TargetOptions& o);

// Adds client identities (SHA-256 of a certificate's SubjectPublicKeyInfo, hex) to the channel's
// client-revocation list (attest/tuf/client_revocations.h), the draft's target
// client-revocations.json; `sign` and `publish` then ship it like any release file. Returns the
// number of identities the list holds.
absl::StatusOr<size_t> RevokeClients(const std::filesystem::path& workdir,
                                     const std::vector<std::string>& spki_sha256,
                                     const std::string& reason);

struct SignOptions {
  std::vector<std::filesystem::path> extra_keys;  // --key FILE: keys not in channel.json
  std::vector<std::string> renew;                 // roles to re-sign with new versions (expiry)
  std::optional<uint64_t> min_release_version;
  std::vector<uint64_t> revoke_releases;
  absl::Time now = absl::Now();
};
// Stages new versions of what changed (the draft, a staged root, renewals; a role whose keys a
// staged root changes is re-signed) and adds the signatures of every key it can decrypt.
// Returns a one-line summary per staged role.
absl::StatusOr<std::vector<std::string>> Sign(const std::filesystem::path& workdir,
                                              const std::string& passphrase, const SignOptions& o);

// Checks the staged metadata as a client would (TUF workflow from the published root: thresholds,
// versions, hashes, expiry), appends a new targets version to the log, then writes the repository
// in an order that keeps it consistent for readers at every step (targets files, log, root,
// targets, snapshot, timestamp last). FailedPrecondition names the failed check.
absl::StatusOr<std::vector<std::string>> Publish(const std::filesystem::path& workdir,
                                                 const std::filesystem::path& repo,
                                                 const std::string& passphrase,
                                                 absl::Time now = absl::Now());

struct RotateOptions {
  std::vector<std::string> generate;  // one new key per entry, for that role
  std::vector<std::pair<std::string, std::filesystem::path>> add_key_files;
  std::vector<std::pair<std::string, std::string>> remove_keyids;  // (role, keyid or prefix)
  std::map<std::string, uint32_t> thresholds;
  absl::Time now = absl::Now();
};
// Stages root version N+1 (a threshold of the old and of the new root keys must sign it: Sign
// adds the signatures of every key available).
absl::StatusOr<std::vector<std::string>> RotateRoot(const std::filesystem::path& workdir,
                                                    const std::string& passphrase,
                                                    const RotateOptions& o);

// The channel's state as JSON: per role the published and staged versions, expiry, keys,
// threshold and valid signatures; the draft's targets; the log's size and root.
absl::StatusOr<nlohmann::json> Status(const std::filesystem::path& workdir, absl::Time now);

// The log entry for a targets version (canonical JSON bytes): channel, targets version, the
// SHA-256 of the targets metadata, the minimum release version, every target's SHA-256 and custom.
absl::StatusOr<std::string> LogEntryForTargets(const std::string& channel,
                                               std::span<const uint8_t> targets_metadata);

}  // namespace appliance::release

#endif  // IMAGE_RELEASE_CHANNEL_H_
