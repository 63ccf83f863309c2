// A TUF repository made by software keys, for tests (issue 8): Ed25519 and ECDSA P-256 keys,
// role metadata signed by any chosen subset of keys, files written as a static repository
// directory that attest::tuf::Client reads.
#ifndef TESTS_TESTING_TUF_REPO_H_
#define TESTS_TESTING_TUF_REPO_H_

#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "keys.h"

namespace attest::testing {

// A role key generated in memory (the operator tool's key class, image/release/keys.h).
class TufKey {
 public:
  static TufKey Ed25519();
  static TufKey EcdsaP256();
  const std::string& id() const { return key_->id(); }
  const nlohmann::json& public_json() const { return key_->public_json(); }
  std::string SignHex(const std::string& message) const { return key_->SignHex(message); }

 private:
  std::shared_ptr<appliance::release::SigningKey> key_;
};

class TufRepo {
 public:
  explicit TufRepo(std::filesystem::path dir);

  // Role keys and thresholds (root, timestamp, snapshot, targets); one Ed25519 key each at first.
  std::map<std::string, std::vector<TufKey>> keys;
  std::map<std::string, uint32_t> thresholds;
  bool consistent_snapshot = false;
  uint64_t root_version = 1, timestamp_version = 1, snapshot_version = 1, targets_version = 1;
  absl::Time expires = absl::Now() + absl::Hours(24 * 30);
  std::map<std::string, absl::Time> role_expires;   // per role, instead of `expires`
  std::optional<absl::Time> issued;                 // the timestamp's signed "issued" time
  std::map<std::string, std::string> target_files;  // name → content
  std::map<std::string, nlohmann::json> target_custom;
  // Delegations: the top-level targets' "delegations" field as given (tests make it good or
  // bad), and the delegated roles PublishAll writes (NAME.json, V.NAME.json) and lists in the
  // snapshot.
  nlohmann::json delegations;
  struct DelegatedRole {
    uint64_t version = 1;
    std::map<std::string, std::string> files;  // target name → content
    std::vector<TufKey> signers;
  };
  std::map<std::string, DelegatedRole> delegated;

  nlohmann::json RootSigned() const;
  nlohmann::json TimestampSigned(const std::string& snapshot_bytes) const;
  nlohmann::json SnapshotSigned(
      const std::string& targets_bytes,
      const std::map<std::string, std::pair<uint64_t, std::string>>& delegated_bytes = {}) const;
  nlohmann::json TargetsSigned() const;
  // An envelope signed by `signers` (default: the role's keys).
  static std::string Envelope(const nlohmann::json& signed_part,
                              const std::vector<TufKey>& signers);

  // Writes N.root.json (signed by `extra_root_signers` too, for rotations), the targets, targets,
  // snapshot and timestamp metadata, as a repository publishes them.
  std::string PublishRoot(const std::vector<TufKey>& extra_signers = {});
  void PublishAll();  // targets files, targets, snapshot, timestamp (not root)
  void Write(const std::string& name, const std::string& bytes) const;
  std::filesystem::path dir() const { return dir_; }
  std::filesystem::path targets_dir() const { return dir_ / "targets"; }
  std::string Expires(const std::string& role) const;

 private:
  std::filesystem::path dir_;
};

}  // namespace attest::testing

#endif  // TESTS_TESTING_TUF_REPO_H_
