#include "attest/tlog.h"

#include "absl/strings/str_cat.h"
#include "attest/encoding.h"
#include "attest/status.h"

namespace attest::tlog {
namespace {

using json = nlohmann::json;

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("tlog: ", what));
}

absl::StatusOr<std::vector<std::vector<uint8_t>>> HexProof(const json& j) {
  if (!j.is_array() || j.size() > merkle::kMaxProofLength) return Bad("proof: at most 64 hashes");
  std::vector<std::vector<uint8_t>> out;
  for (const auto& e : j) {
    if (!e.is_string()) return Bad("proof: hex hashes expected");
    auto h = HexDecode(e.get<std::string>());
    if (!h.ok() || h->size() != 32) return Bad("proof: 32-byte hex hashes expected");
    out.push_back(*std::move(h));
  }
  return out;
}

absl::StatusOr<json> ParseObject(std::span<const uint8_t> bytes, size_t max, const char* what) {
  if (bytes.size() > max) return Bad(absl::StrCat(what, ": larger than ", max, " bytes"));
  json j = json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Bad(absl::StrCat(what, ": not a JSON object"));
  return j;
}

absl::StatusOr<uint64_t> Uint(const json& j, const char* key, const char* what) {
  if (!j.contains(key) || !j[key].is_number_unsigned()) {
    return Bad(absl::StrCat(what, ".", key, ": an integer expected"));
  }
  return j[key].get<uint64_t>();
}

std::string ProofJson(const std::vector<merkle::Hash>& p) {
  json a = json::array();
  for (const auto& h : p) a.push_back(HexEncode(h));
  return a.dump();
}

}  // namespace

json CheckpointSigned(const Checkpoint& c) {
  return {{"_type", "checkpoint"},
          {"log", c.log},
          {"size", c.size},
          {"root", HexEncode(c.root)},
          {"timestamp", tuf::FormatUtc(c.timestamp)}};
}

absl::StatusOr<Checkpoint> VerifyCheckpoint(std::span<const uint8_t> bytes,
                                            const tuf::Key& log_key) {
  ASSIGN_OR_RETURN(json j, ParseObject(bytes, kMaxCheckpointSize, "checkpoint"));
  if (j.size() != 2 || !j.contains("signed") || !j["signed"].is_object() ||
      !j.contains("signatures") || !j["signatures"].is_array() || j["signatures"].size() > 16) {
    return Bad("checkpoint: {\"signed\", \"signatures\"} expected");
  }
  const json& s = j["signed"];
  if (!s.contains("_type") || s["_type"] != "checkpoint")
    return Bad("checkpoint._type: 'checkpoint' expected");
  tuf::Envelope e;
  e.type = "checkpoint";
  ASSIGN_OR_RETURN(e.canonical_signed, tuf::CanonicalJson(s));
  for (const auto& sig : j["signatures"]) {
    if (!sig.is_object() || !sig.contains("keyid") || !sig["keyid"].is_string() ||
        !sig.contains("sig") || !sig["sig"].is_string()) {
      return Bad("checkpoint: a signature is {keyid, sig}");
    }
    auto raw = HexDecode(sig["sig"].get<std::string>());
    if (!raw.ok() || raw->size() > 512) return Bad("checkpoint: a signature is hex");
    e.signatures.emplace_back(sig["keyid"].get<std::string>(), *std::move(raw));
  }
  tuf::Role role{{log_key.KeyId()}, 1};
  const std::map<std::string, tuf::Key> keys = {{log_key.KeyId(), log_key}};
  if (!tuf::VerifyRoleSignatures(e, "checkpoint", role, keys).ok()) {
    return VerificationFailed(
        "tlog.checkpoint.signature",
        absl::StrCat("the checkpoint is not signed by the log key ", log_key.KeyId()));
  }
  Checkpoint c;
  if (!s.contains("log") || !s["log"].is_string()) return Bad("checkpoint.log: a name expected");
  c.log = s["log"];
  ASSIGN_OR_RETURN(c.size, Uint(s, "size", "checkpoint"));
  if (!s.contains("root") || !s["root"].is_string()) return Bad("checkpoint.root expected");
  auto root = HexDecode(s["root"].get<std::string>());
  if (!root.ok() || root->size() != 32) return Bad("checkpoint.root: 32 bytes of hex expected");
  std::copy(root->begin(), root->end(), c.root.begin());
  if (!s.contains("timestamp")) return Bad("checkpoint.timestamp expected");
  auto t = tuf::ParseTime(s["timestamp"], "checkpoint.timestamp");
  if (!t.ok()) return Bad(t.status().message());
  c.timestamp = *t;
  return c;
}

absl::StatusOr<InclusionProof> ParseInclusionProof(std::span<const uint8_t> bytes) {
  ASSIGN_OR_RETURN(json j, ParseObject(bytes, kMaxProofFileSize, "inclusion proof"));
  InclusionProof p;
  ASSIGN_OR_RETURN(p.index, Uint(j, "index", "inclusion proof"));
  ASSIGN_OR_RETURN(p.size, Uint(j, "size", "inclusion proof"));
  if (!j.contains("proof")) return Bad("inclusion proof.proof expected");
  ASSIGN_OR_RETURN(p.proof, HexProof(j["proof"]));
  return p;
}

absl::StatusOr<ConsistencyProof> ParseConsistencyProof(std::span<const uint8_t> bytes) {
  ASSIGN_OR_RETURN(json j, ParseObject(bytes, kMaxProofFileSize, "consistency proof"));
  ConsistencyProof p;
  ASSIGN_OR_RETURN(p.size1, Uint(j, "size1", "consistency proof"));
  ASSIGN_OR_RETURN(p.size2, Uint(j, "size2", "consistency proof"));
  if (!j.contains("proof")) return Bad("consistency proof.proof expected");
  ASSIGN_OR_RETURN(p.proof, HexProof(j["proof"]));
  return p;
}

std::string InclusionProofJson(uint64_t index, uint64_t size, const std::vector<merkle::Hash>& p) {
  return absl::StrCat(R"({"index":)", index, R"(,"proof":)", ProofJson(p), R"(,"size":)", size,
                      "}\n");
}

std::string ConsistencyProofJson(uint64_t size1, uint64_t size2,
                                 const std::vector<merkle::Hash>& p) {
  return absl::StrCat(R"({"proof":)", ProofJson(p), R"(,"size1":)", size1, R"(,"size2":)", size2,
                      "}\n");
}

absl::Status VerifyEntry(std::span<const uint8_t> entry, const InclusionProof& proof,
                         const Checkpoint& checkpoint) {
  if (proof.size != checkpoint.size) {
    return VerificationFailed("tlog.inclusion",
                              absl::StrCat("the proof is for a tree of ", proof.size,
                                           " entries, the checkpoint has ", checkpoint.size));
  }
  const merkle::Hash leaf = merkle::LeafHash(entry);
  auto st = merkle::VerifyInclusion(proof.index, proof.size, leaf, proof.proof, checkpoint.root);
  if (!st.ok()) {
    return VerificationFailed("tlog.inclusion", absl::StrCat("entry ", proof.index, " (leaf ",
                                                             HexEncode(leaf), "): ", st.message()));
  }
  return absl::OkStatus();
}

absl::Status VerifyExtends(const Checkpoint& older, const Checkpoint& newer,
                           const ConsistencyProof& proof) {
  if (older.log != newer.log) {
    return VerificationFailed("tlog.consistency", absl::StrCat("checkpoints of two logs ('",
                                                               older.log, "', '", newer.log, "')"));
  }
  if (proof.size1 != older.size || proof.size2 != newer.size) {
    return VerificationFailed(
        "tlog.consistency",
        absl::StrCat("the proof is from ", proof.size1, " to ", proof.size2,
                     " entries, the checkpoints have ", older.size, " and ", newer.size));
  }
  auto st = merkle::VerifyConsistency(older.size, newer.size, proof.proof, older.root, newer.root);
  if (!st.ok()) {
    return VerificationFailed("tlog.consistency",
                              absl::StrCat(st.message(), " (a forked or rewritten log)"));
  }
  return absl::OkStatus();
}

}  // namespace attest::tlog
