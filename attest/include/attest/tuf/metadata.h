// The Update Framework (TUF 1.0.x) metadata for the release channel (issue 8): canonical JSON,
// keys (Ed25519, ECDSA P-256), signed envelopes with per-role thresholds, and the four top-level
// roles: root, timestamp, snapshot, targets. Written from the specification.
//
// Everything parsed here comes from a mirror and is untrusted until a threshold of the right
// role's keys has signed the canonical form of "signed". Parsers are strict (types, required keys)
// and bounded by the caller's size limits.
#ifndef ATTEST_TUF_METADATA_H_
#define ATTEST_TUF_METADATA_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace attest::tuf {

// TUF's canonical JSON (the OLPC form securesystemslib signs): keys sorted, no whitespace, only
// '"' and '\' escaped in strings, integers only (a float is an error), nesting at most 32 deep.
absl::StatusOr<std::string> CanonicalJson(const nlohmann::json& value);

// A public key as root metadata lists it.
struct Key {
  std::string keytype;            // "ed25519" or "ecdsa"
  std::string scheme;             // "ed25519" or "ecdsa-sha2-nistp256"
  std::string public_value;       // keyval.public: hex (Ed25519) or PEM (ECDSA)
  std::vector<uint8_t> spki_der;  // the parsed key, for identity (a key counts once)
  nlohmann::json ToJson() const;
  // SHA-256 of the canonical JSON of the key, hex: the key id TUF defines.
  std::string KeyId() const;
};

absl::StatusOr<Key> ParseKey(const nlohmann::json& j);
// Verifies `signature` over `message` with the key's scheme.
absl::Status VerifySignature(const Key& key, std::span<const uint8_t> message,
                             std::span<const uint8_t> signature);

struct Role {
  std::vector<std::string> keyids;
  uint32_t threshold = 1;
};

struct MetaFile {  // an entry of timestamp's or snapshot's "meta"
  uint64_t version = 0;
  std::optional<uint64_t> length;
  std::map<std::string, std::vector<uint8_t>> hashes;  // "sha256"/"sha512" → digest
};

struct TargetFile {
  uint64_t length = 0;
  std::map<std::string, std::vector<uint8_t>> hashes;
  nlohmann::json custom;  // e.g. {"hardware": "...", "release_version": N}
};

struct Envelope {
  std::string type;  // "root", "timestamp", "snapshot", "targets"
  uint64_t version = 0;
  absl::Time expires;
  std::string canonical_signed;  // what the signatures cover
  std::vector<std::pair<std::string, std::vector<uint8_t>>> signatures;  // keyid, signature
  nlohmann::json signed_json;
};

struct Root {
  Envelope envelope;
  bool consistent_snapshot = false;
  std::map<std::string, Key> keys;    // keyid → key
  std::map<std::string, Role> roles;  // "root", "timestamp", "snapshot", "targets"
};
struct Timestamp {
  Envelope envelope;
  MetaFile snapshot;  // meta["snapshot.json"]
};
struct Snapshot {
  Envelope envelope;
  std::map<std::string, MetaFile> meta;  // "targets.json" (and delegated roles)
};
// A delegation of part of the target namespace to another targets role (TUF "delegations").
struct Delegation {
  std::string name;  // the role; its metadata is NAME.json (letters, digits, '.', '_', '-')
  Role role;         // its keys (from the delegator's delegations.keys) and threshold
  std::vector<std::string> paths;               // shell-style patterns ('*' stops at '/')
  std::vector<std::string> path_hash_prefixes;  // or hex prefixes of SHA-256(target path)
  bool terminating = false;
  bool Matches(const std::string& target_path) const;
};

struct Targets {
  Envelope envelope;
  std::map<std::string, TargetFile> targets;
  nlohmann::json custom;  // signed.custom: {"min_release_version": N, ...}
  std::map<std::string, Key> delegation_keys;
  std::vector<Delegation> delegations;  // in order: the search visits them in this order
};

// TUF's time form, "YYYY-MM-DDTHH:MM:SSZ" (UTC, whole seconds): format and strict parse.
inline constexpr char kTimeFormat[] = "%Y-%m-%dT%H:%M:%SZ";
std::string FormatUtc(absl::Time t);
absl::StatusOr<absl::Time> ParseTime(const nlohmann::json& v, const std::string& where);

// Parses the envelope and the role's fields; InvalidArgument names the field. `expected_type`
// must equal signed._type.
absl::StatusOr<Envelope> ParseEnvelope(std::span<const uint8_t> bytes,
                                       const std::string& expected_type);
absl::StatusOr<Root> ParseRoot(std::span<const uint8_t> bytes);
absl::StatusOr<Timestamp> ParseTimestamp(std::span<const uint8_t> bytes);
absl::StatusOr<Snapshot> ParseSnapshot(std::span<const uint8_t> bytes);
absl::StatusOr<Targets> ParseTargets(std::span<const uint8_t> bytes);

// At least `role.threshold` distinct keys of `role` (looked up in `keys`) signed the envelope.
// Signatures by unknown keys or by a key listed twice count once at most; FailedPrecondition
// ("tuf.<role>.threshold: ...") names the role and the counts.
absl::Status VerifyRoleSignatures(const Envelope& e, const std::string& role_name, const Role& role,
                                  const std::map<std::string, Key>& keys);

// The hashes and length of `bytes` match `expected` (every listed hash; at least one known hash).
absl::Status CheckHashes(std::span<const uint8_t> bytes,
                         const std::map<std::string, std::vector<uint8_t>>& expected,
                         std::optional<uint64_t> length, const std::string& what);

// CheckHashes over bytes that arrive in pieces (a streamed download).
class StreamingHashes {
 public:
  explicit StreamingHashes(const std::map<std::string, std::vector<uint8_t>>& expected);
  ~StreamingHashes();
  StreamingHashes(const StreamingHashes&) = delete;
  StreamingHashes& operator=(const StreamingHashes&) = delete;
  void Update(std::span<const uint8_t> bytes);
  uint64_t size() const { return size_; }
  // FailedPrecondition "tuf.<what>.length" / "tuf.<what>.hash" as CheckHashes.
  absl::Status Finish(std::optional<uint64_t> length, const std::string& what);

 private:
  struct Digest;
  const std::map<std::string, std::vector<uint8_t>>& expected_;
  std::vector<std::unique_ptr<Digest>> digests_;
  uint64_t size_ = 0;
};

}  // namespace attest::tuf

#endif  // ATTEST_TUF_METADATA_H_
