// What a coordinator (and the key-release service) checks about a release, on top of the TUF
// client workflow (issue 8): the channel's policy in the signed targets metadata
//   signed.custom = {"min_release_version": N, "revoked_releases": [V, ...]}
// a target's release (custom.release_version, custom.kind, custom.hardware), and that the trusted
// targets version was published in the channel's transparency log:
//   LOG/checkpoint.json            signed tree head (attest/tlog.h)
//   LOG/targets/V.json             {"index": I}: the entry of targets version V
//   LOG/entries/I.json             the entry: {"_type": "release-log-entry", "channel",
//                                  "targets_version": V, "targets_sha256", "targets": {...}, ...}
//   LOG/proofs/inclusion-I.json    the entry's inclusion proof at the checkpoint's size
//   LOG/proofs/consistency-M.json  size M → the checkpoint's size
#ifndef ATTEST_TUF_RELEASE_H_
#define ATTEST_TUF_RELEASE_H_

#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attest/tlog.h"
#include "attest/tuf/client.h"
#include "attest/tuf/metadata.h"

namespace attest::tuf {

struct ReleasePolicy {
  uint64_t min_release_version = 0;
  std::set<uint64_t> revoked;
};
// InvalidArgument if custom is malformed.
absl::StatusOr<ReleasePolicy> PolicyOf(const Targets& targets);

// PermissionDenied "release.min_version: ..." or "release.revoked: ..." naming the values.
absl::Status CheckRelease(const ReleasePolicy& policy, uint64_t release_version);

// A target's release facts from its custom field (custom.release_version, .kind, .hardware,
// .roothash); a field that is absent or of another type reads as 0 / empty (such a target belongs
// to no release).
struct TargetRelease {
  uint64_t release_version = 0;
  std::string kind;
  std::string hardware;
  std::string roothash;
};
TargetRelease ReleaseOf(const TargetFile& target);

// The log's files (see above), bounded and strictly typed; InvalidArgument names the field.
inline constexpr size_t kMaxLogIndexFile = 1024;
inline constexpr size_t kMaxLogEntry = 64 * 1024;
absl::StatusOr<uint64_t> ParseLogIndex(std::span<const uint8_t> bytes);  // targets/V.json
struct LogEntry {
  uint64_t targets_version = 0;
  std::string targets_sha256;  // lower-case hex, 64 characters
};
absl::StatusOr<LogEntry> ParseLogEntry(std::span<const uint8_t> bytes);  // entries/I.json

// The release's SBOM (scripts/build-image writes it; docs/release-channel.md "SBOM"):
//   {"_type": "appliance-sbom", "source_commit": "<40 hex>", "source_date_epoch": N,
//    "release_version": V, "model_container": "sha256:<hex>",
//    "packages": [{"name", "version", "architecture", "deb_sha256": "<hex>"}, ...]}
struct SbomPackage {
  std::string name, version, architecture;
  std::array<uint8_t, 32> deb_sha256{};
};
struct Sbom {
  std::string source_commit;  // lower-case hex
  uint64_t source_date_epoch = 0;
  uint64_t release_version = 0;
  std::array<uint8_t, 32> model_container{};
  std::vector<SbomPackage> packages;  // name:architecture unique
};
inline constexpr size_t kMaxSbom = 8 << 20;
inline constexpr size_t kMaxSbomPackages = 20000;
// Bounded and strict; InvalidArgument names the field.
absl::StatusOr<Sbom> ParseSbom(std::span<const uint8_t> bytes);

struct FoundTarget {
  std::string name;
  uint64_t release_version = 0;  // 0 if the target names none
  std::string kind;
};
// The target whose SHA-256 (and length) is `sha256` of `length` bytes; PermissionDenied
// ("release.target: ...") if the channel lists none.
absl::StatusOr<FoundTarget> FindTarget(const Targets& targets, std::span<const uint8_t> sha256,
                                       uint64_t length);

struct LoggedTargets {
  tlog::Checkpoint checkpoint;
  std::vector<uint8_t> checkpoint_bytes;  // as served: to keep for the next run
  uint64_t index = 0;
  std::optional<uint64_t> extends_size;  // the size of the trusted checkpoint it extends
};
// The targets metadata (its exact bytes, version `version`) is an entry of the log at `log_url`
// whose checkpoint `log_key` signs, and that checkpoint extends `trusted` (a checkpoint kept from
// an earlier run) if given. PermissionDenied names the check (tlog.checkpoint.signature,
// tlog.entry, tlog.inclusion, tlog.consistency).
absl::StatusOr<LoggedTargets> VerifyTargetsLogged(Fetcher& fetcher, const std::string& log_url,
                                                  const Key& log_key,
                                                  std::span<const uint8_t> targets_bytes,
                                                  uint64_t version,
                                                  const std::optional<tlog::Checkpoint>& trusted);

}  // namespace attest::tuf

#endif  // ATTEST_TUF_RELEASE_H_
