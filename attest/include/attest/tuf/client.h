// The TUF client workflow (TUF 1.0.x, "Detailed client workflow"): from a trusted root, update the
// root chain, then timestamp, snapshot and targets, each checked for signatures (thresholds),
// versions (no rollback, snapshot/targets versions as the role above says), expiry and, where the
// role above lists them, lengths and hashes; then download a target of known length and hashes.
// Trusted metadata is kept in a directory under unversioned names (root.json, timestamp.json,
// snapshot.json, targets.json); nothing is written unless the whole refresh passed (each file
// replaced atomically).
//
// Time: the clock is the host's, so expiry is checked against max(clock, floor, signed time), the
// floor being the newest signing time of a timestamp ever trusted (its "issued" field, which our
// publisher signs; kept in kFloorFile next to the metadata and never lowered), the signed time
// one a coordinator supplied (set_signed_time).
#ifndef ATTEST_TUF_CLIENT_H_
#define ATTEST_TUF_CLIENT_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "attest/tuf/metadata.h"

namespace attest::tuf {

// Fetches a URL with a size bound: more bytes than `max_bytes` is an error (endless data), a
// missing file is NotFound.
class Fetcher {
 public:
  using Sink = std::function<absl::Status(std::span<const uint8_t>)>;
  virtual ~Fetcher() = default;
  // The body handed to `sink` piece by piece as it arrives (a target of gigabytes is never held
  // in memory); a sink error ends the transfer with that error.
  virtual absl::Status FetchTo(const std::string& url, size_t max_bytes, const Sink& sink) = 0;
  // The whole body (metadata, small targets).
  absl::StatusOr<std::vector<uint8_t>> Fetch(const std::string& url, size_t max_bytes);
};
// A repository directory: plain paths and file:// URLs.
std::unique_ptr<Fetcher> MakeFileFetcher();
// http:// and https:// URLs (and directories/file:// as above): one deadline for the whole
// request, `timeout` plus 1 s per MiB of `max_bytes` (slow retrieval), the body bounded by the
// caller's limit, no redirects. HTTPS: TLS 1.3, the server verified against the system's trust
// store, or `ca_file` (PEM) when given.
std::unique_ptr<Fetcher> MakeHttpFetcher(absl::Duration timeout = absl::Seconds(30),
                                         std::string ca_file = "");

struct Limits {
  size_t root = 512 * 1024;
  size_t timestamp = 16 * 1024;
  size_t snapshot = 4 * 1024 * 1024;
  size_t targets = 16 * 1024 * 1024;
  uint32_t max_root_rotations = 32;
  uint32_t max_delegations = 32;  // delegated roles visited per lookup
};

inline constexpr char kFloorFile[] = "time-floor.json";

class Client {
 public:
  Client(std::filesystem::path metadata_dir, std::string metadata_url, Fetcher* fetcher,
         absl::Time now = absl::Now(), Limits limits = {});

  // Stores TRUSTED_ROOT as root.json after parsing it and checking its own signatures.
  static absl::Status Init(const std::filesystem::path& metadata_dir,
                           std::span<const uint8_t> trusted_root);

  // The whole update: root chain, timestamp, snapshot, targets. FailedPrecondition names the
  // check ("tuf.timestamp.rollback: ..."); InvalidArgument a malformed file.
  absl::Status Refresh();

  // After Refresh: the target's metadata (found by TUF's delegation search: the top-level targets,
  // then delegated roles depth first in listed order, a terminating delegation ending the search;
  // each delegated role, cached or fetched, verified against its delegator's keys and threshold
  // on every lookup), downloaded from TARGET_BASE_URL, checked, written to TARGET_DIR/<name>. With
  // `hardware_id`, the target's custom "hardware" must name it (a release built for other hardware
  // is wrong software for this appliance). The body is streamed into TARGET_DIR/<name>.part and
  // hashed as it arrives (memory stays bounded whatever the target's size), then renamed into
  // place only once its length and hashes match; a failed download leaves no file.
  absl::StatusOr<TargetFile> Download(const std::string& target_name,
                                      const std::string& target_base_url,
                                      const std::filesystem::path& target_dir,
                                      const std::optional<std::string>& hardware_id = std::nullopt);

  // A verified signed time (attest/tuf/signed_time.h): expiry is then checked against
  // max(clock, floor, signed time) for the rest of this client's life. It only moves "now"
  // forward, and is not kept (the floor is).
  void set_signed_time(absl::Time t, std::string source) {
    signed_time_ = t;
    signed_time_source_ = std::move(source);
  }

  // After Refresh: a small target (listed with at most `max_bytes`) found as Download finds it,
  // fetched into memory and checked (length and hashes as signed).
  absl::StatusOr<std::vector<uint8_t>> ReadTarget(const std::string& target_name,
                                                  const std::string& target_base_url,
                                                  size_t max_bytes);

  const Root& root() const { return root_; }
  const Targets& targets() const { return targets_; }

 private:
  absl::Status LoadTrusted();
  absl::Status UpdateRoot();
  absl::Status UpdateTimestamp();
  absl::Status UpdateSnapshot();
  absl::Status UpdateTargets();
  template <typename Parsed>
  absl::StatusOr<std::pair<Parsed, std::vector<uint8_t>>> FetchListed(
      const std::string& role, const MetaFile& want, size_t limit,
      absl::StatusOr<Parsed> (*parse)(std::span<const uint8_t>), const char* named_by,
      const Role& signers, const std::map<std::string, Key>& keys);
  absl::StatusOr<TargetFile> Lookup(const std::string& target_name);
  // The target's signed metadata and the URL it is fetched from (its hash-prefixed name under
  // consistent snapshots), after the hardware and name checks.
  absl::StatusOr<std::pair<TargetFile, std::string>> Locate(
      const std::string& target_name, const std::string& target_base_url,
      const std::optional<std::string>& hardware_id);
  absl::StatusOr<Targets> LoadDelegated(const Delegation& d,
                                        const std::map<std::string, Key>& keys);
  absl::Status Expired(const Envelope& e) const;
  absl::Status RaiseFloor(const Envelope& timestamp);
  std::string Url(const std::string& base, const std::string& name) const;
  void Store(const std::string& name, std::span<const uint8_t> bytes);
  absl::Status Commit();

  std::filesystem::path dir_;
  std::string url_;
  Fetcher* fetcher_;
  absl::Time now_;
  absl::Time floor_ = absl::InfinitePast();
  absl::Time signed_time_ = absl::InfinitePast();
  std::string signed_time_source_;
  Limits limits_;
  Root root_;
  std::optional<Timestamp> timestamp_;
  std::optional<Snapshot> snapshot_;
  Targets targets_;
  bool have_targets_ = false;
  std::map<std::string, std::vector<uint8_t>> pending_;  // written by Commit()
  std::set<std::string> pending_removals_;
};

}  // namespace attest::tuf

#endif  // ATTEST_TUF_CLIENT_H_
