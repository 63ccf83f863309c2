#include "log.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/merkle.h"
#include "attest/status.h"
#include "attest/tlog.h"
#include "attest/tuf/metadata.h"
#include "keys.h"

namespace appliance::release {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
constexpr size_t kMaxEntry = 64 * 1024;
constexpr uint64_t kMaxEntries = 1u << 24;

struct Log {
  std::string name;
  attest::tuf::Key key;
  std::vector<attest::merkle::Hash> leaves;
};

absl::StatusOr<Log> Open(const fs::path& dir) {
  ASSIGN_OR_RETURN(auto meta, attest::ReadFileBounded(dir / "log.json", 16 * 1024));
  json j = json::parse(meta.begin(), meta.end(), nullptr, false);
  if (j.is_discarded() || !j.contains("name") || !j["name"].is_string() || !j.contains("key")) {
    return absl::InvalidArgumentError(absl::StrCat((dir / "log.json").string(), ": malformed"));
  }
  Log log;
  log.name = j["name"];
  ASSIGN_OR_RETURN(log.key, attest::tuf::ParseKey(j["key"]));
  for (uint64_t i = 0; i < kMaxEntries; ++i) {
    const fs::path f = dir / "entries" / absl::StrCat(i, ".json");
    if (!fs::exists(f)) break;
    ASSIGN_OR_RETURN(auto bytes, attest::ReadFileBounded(f, kMaxEntry));
    log.leaves.push_back(attest::merkle::LeafHash(bytes));
  }
  return log;
}

attest::merkle::Tree TreeOf(const Log& log) {
  attest::merkle::Tree t;
  for (const auto& l : log.leaves) t.Append(l);
  return t;
}

}  // namespace

absl::Status LogInit(const fs::path& dir, const std::string& name, const fs::path& key_out,
                     const std::string& passphrase) {
  if (fs::exists(dir / "log.json"))
    return absl::AlreadyExistsError(dir.string() + ": a log exists");
  ASSIGN_OR_RETURN(auto key, SigningKey::Generate("ed25519"));
  RETURN_IF_ERROR(key.Save(key_out, passphrase));
  std::error_code ec;
  fs::create_directories(dir / "entries", ec);
  json meta = {{"name", name}, {"key", key.public_json()}};
  return attest::WriteFileAtomically(dir / "log.json", meta.dump(2) + "\n");
}

absl::StatusOr<uint64_t> LogAppend(const fs::path& dir, const SigningKey& key,
                                   std::span<const uint8_t> entry) {
  ASSIGN_OR_RETURN(Log log, Open(dir));
  if (key.id() != log.key.KeyId()) {
    return absl::PermissionDeniedError("the key is not this log's key");
  }
  if (entry.size() > kMaxEntry) {
    return absl::InvalidArgumentError(absl::StrCat("an entry is at most ", kMaxEntry, " bytes"));
  }
  const uint64_t index = log.leaves.size();
  RETURN_IF_ERROR(
      attest::WriteFileAtomically(dir / "entries" / absl::StrCat(index, ".json"), entry));
  log.leaves.push_back(attest::merkle::LeafHash(entry));
  const auto tree = TreeOf(log);
  attest::tlog::Checkpoint c;
  c.log = log.name;
  c.size = tree.size();
  ASSIGN_OR_RETURN(c.root, tree.Root(c.size));
  c.timestamp = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  const json signed_part = attest::tlog::CheckpointSigned(c);
  ASSIGN_OR_RETURN(auto canonical, attest::tuf::CanonicalJson(signed_part));
  json checkpoint = {
      {"signed", signed_part},
      {"signatures", json::array({{{"keyid", log.key.KeyId()}, {"sig", key.SignHex(canonical)}}})}};
  // The proofs a static server hands out, for the new size: every entry's inclusion proof and
  // every older size's consistency proof. Written before the checkpoint that they prove against.
  fs::create_directories(dir / "proofs");
  for (uint64_t i = 0; i < c.size; ++i) {
    ASSIGN_OR_RETURN(auto proof, tree.InclusionProof(i, c.size));
    RETURN_IF_ERROR(
        attest::WriteFileAtomically(dir / "proofs" / absl::StrCat("inclusion-", i, ".json"),
                                    attest::tlog::InclusionProofJson(i, c.size, proof)));
  }
  for (uint64_t m = 1; m < c.size; ++m) {
    ASSIGN_OR_RETURN(auto proof, tree.ConsistencyProof(m, c.size));
    RETURN_IF_ERROR(
        attest::WriteFileAtomically(dir / "proofs" / absl::StrCat("consistency-", m, ".json"),
                                    attest::tlog::ConsistencyProofJson(m, c.size, proof)));
  }
  RETURN_IF_ERROR(attest::WriteFileAtomically(dir / "checkpoint.json", checkpoint.dump(2) + "\n"));
  return index;
}

absl::StatusOr<uint64_t> LogAppend(const fs::path& dir, const fs::path& key_file,
                                   const std::string& passphrase, const fs::path& entry_file) {
  ASSIGN_OR_RETURN(auto key, SigningKey::Load(key_file, passphrase));
  ASSIGN_OR_RETURN(auto entry, attest::ReadFileBounded(entry_file, kMaxEntry));
  return LogAppend(dir, key, entry);
}

absl::StatusOr<std::string> LogProveInclusion(const fs::path& dir, uint64_t index, uint64_t size) {
  ASSIGN_OR_RETURN(Log log, Open(dir));
  const auto tree = TreeOf(log);
  if (size == 0) size = tree.size();
  ASSIGN_OR_RETURN(auto proof, tree.InclusionProof(index, size));
  return attest::tlog::InclusionProofJson(index, size, proof);
}

absl::StatusOr<std::string> LogProveConsistency(const fs::path& dir, uint64_t size1,
                                                uint64_t size2) {
  ASSIGN_OR_RETURN(Log log, Open(dir));
  const auto tree = TreeOf(log);
  if (size2 == 0) size2 = tree.size();
  ASSIGN_OR_RETURN(auto proof, tree.ConsistencyProof(size1, size2));
  return attest::tlog::ConsistencyProofJson(size1, size2, proof);
}

}  // namespace appliance::release
