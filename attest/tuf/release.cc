#include "attest/tuf/release.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "attest/encoding.h"
#include "attest/status.h"
#include "attest/tpm/hash_alg.h"

namespace attest::tuf {
namespace {

using json = nlohmann::json;

std::string Join(const std::string& base, const std::string& name) {
  return base.empty() || base.back() == '/' ? base + name : base + "/" + name;
}

// A file of the log; a missing or oversized one is a failed check (the log does not show it).
absl::StatusOr<std::vector<uint8_t>> FetchLogFile(Fetcher& f, const std::string& url,
                                                  const std::string& name, size_t max,
                                                  const char* check) {
  auto bytes = f.Fetch(Join(url, name), max);
  if (!bytes.ok()) {
    return VerificationFailed(check, absl::StrCat("cannot fetch ", name, " from the log at ", url,
                                                  ": ", bytes.status().message()));
  }
  return bytes;
}

}  // namespace

TargetRelease ReleaseOf(const TargetFile& target) {
  TargetRelease r;
  const json& c = target.custom;
  if (!c.is_object()) return r;
  auto text = [&](const char* key) {
    auto it = c.find(key);
    return it != c.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (auto v = c.find("release_version");
      v != c.end() &&
      (v->is_number_unsigned() || (v->is_number_integer() && v->get<int64_t>() >= 0))) {
    r.release_version = v->get<uint64_t>();
  }
  r.kind = text("kind");
  r.hardware = text("hardware");
  r.roothash = text("roothash");
  return r;
}

absl::StatusOr<uint64_t> ParseLogIndex(std::span<const uint8_t> bytes) {
  if (bytes.size() > kMaxLogIndexFile) {
    return absl::InvalidArgumentError(
        absl::StrCat("log index file: ", bytes.size(), " bytes, at most ", kMaxLogIndexFile));
  }
  json idx = json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (!idx.is_object() || !idx.contains("index") || !idx["index"].is_number_unsigned()) {
    return absl::InvalidArgumentError("log index file: {\"index\": N} expected");
  }
  return idx["index"].get<uint64_t>();
}

absl::StatusOr<LogEntry> ParseLogEntry(std::span<const uint8_t> bytes) {
  if (bytes.size() > kMaxLogEntry) {
    return absl::InvalidArgumentError(
        absl::StrCat("log entry: ", bytes.size(), " bytes, at most ", kMaxLogEntry));
  }
  json e = json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (!e.is_object()) return absl::InvalidArgumentError("log entry: a JSON object expected");
  auto type = e.find("_type");
  if (type == e.end() || !type->is_string() || *type != "release-log-entry") {
    return absl::InvalidArgumentError("log entry: _type must be \"release-log-entry\"");
  }
  auto version = e.find("targets_version");
  if (version == e.end() || !version->is_number_unsigned()) {
    return absl::InvalidArgumentError("log entry: targets_version must be an unsigned integer");
  }
  auto sha = e.find("targets_sha256");
  if (sha == e.end() || !sha->is_string() || sha->get_ref<const std::string&>().size() != 64 ||
      !HexDecode(sha->get<std::string>()).ok()) {
    return absl::InvalidArgumentError("log entry: targets_sha256 must be 64 hex digits");
  }
  LogEntry out;
  out.targets_version = version->get<uint64_t>();
  out.targets_sha256 = absl::AsciiStrToLower(sha->get<std::string>());
  return out;
}

absl::StatusOr<Sbom> ParseSbom(std::span<const uint8_t> bytes) {
  auto bad = [](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("SBOM: ", what));
  };
  if (bytes.size() > kMaxSbom) {
    return bad(absl::StrCat(bytes.size(), " bytes, at most ", kMaxSbom));
  }
  const json j = json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (!j.is_object()) return bad("a JSON object expected");
  auto text = [&](const json& o, const char* key,
                  const std::string& at) -> absl::StatusOr<std::string> {
    auto it = o.find(key);
    if (it == o.end() || !it->is_string() || it->get_ref<const std::string&>().empty() ||
        it->get_ref<const std::string&>().size() > 256) {
      return bad(absl::StrCat(at, key, ": a string of 1 to 256 bytes expected"));
    }
    return it->get<std::string>();
  };
  auto number = [&](const char* key) -> absl::StatusOr<uint64_t> {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_unsigned()) {
      return bad(absl::StrCat(key, ": an unsigned integer expected"));
    }
    return it->get<uint64_t>();
  };
  auto sha256 = [&](const std::string& hex,
                    const std::string& what) -> absl::StatusOr<std::array<uint8_t, 32>> {
    auto b = HexDecode(hex);
    if (hex.size() != 64 || !b.ok()) return bad(absl::StrCat(what, ": 64 hex digits expected"));
    std::array<uint8_t, 32> out{};
    std::copy(b->begin(), b->end(), out.begin());
    return out;
  };
  ASSIGN_OR_RETURN(std::string type, text(j, "_type", ""));
  if (type != "appliance-sbom") return bad("_type must be \"appliance-sbom\"");
  Sbom s;
  ASSIGN_OR_RETURN(s.source_commit, text(j, "source_commit", ""));
  if (s.source_commit.size() != 40 || !HexDecode(s.source_commit).ok()) {
    return bad("source_commit: a git commit (40 hex digits) expected");
  }
  s.source_commit = absl::AsciiStrToLower(s.source_commit);
  ASSIGN_OR_RETURN(s.source_date_epoch, number("source_date_epoch"));
  ASSIGN_OR_RETURN(s.release_version, number("release_version"));
  ASSIGN_OR_RETURN(std::string model, text(j, "model_container", ""));
  if (!absl::StartsWith(model, "sha256:")) return bad("model_container: sha256:<hex> expected");
  ASSIGN_OR_RETURN(s.model_container, sha256(model.substr(7), "model_container"));
  auto packages = j.find("packages");
  if (packages == j.end() || !packages->is_array() || packages->size() > kMaxSbomPackages) {
    return bad(absl::StrCat("packages: a list of at most ", kMaxSbomPackages, " expected"));
  }
  std::set<std::string> names;
  for (size_t i = 0; i < packages->size(); ++i) {
    const json& p = (*packages)[i];
    const std::string at = absl::StrCat("packages[", i, "].");
    if (!p.is_object()) return bad(absl::StrCat(at, ": an object expected"));
    SbomPackage pkg;
    ASSIGN_OR_RETURN(pkg.name, text(p, "name", at));
    ASSIGN_OR_RETURN(pkg.version, text(p, "version", at));
    ASSIGN_OR_RETURN(pkg.architecture, text(p, "architecture", at));
    ASSIGN_OR_RETURN(std::string deb, text(p, "deb_sha256", at));
    ASSIGN_OR_RETURN(pkg.deb_sha256, sha256(deb, at + "deb_sha256"));
    if (!names.insert(absl::StrCat(pkg.name, ":", pkg.architecture)).second) {
      return bad(absl::StrCat(at, "name: ", pkg.name, ":", pkg.architecture, " is listed twice"));
    }
    s.packages.push_back(std::move(pkg));
  }
  return s;
}

absl::StatusOr<ReleasePolicy> PolicyOf(const Targets& targets) {
  ReleasePolicy p;
  if (targets.custom.is_null()) return p;
  if (!targets.custom.is_object()) {
    return absl::InvalidArgumentError("targets.json.custom: an object expected");
  }
  if (auto m = targets.custom.find("min_release_version"); m != targets.custom.end()) {
    if (!m->is_number_unsigned()) {
      return absl::InvalidArgumentError("targets.json.custom.min_release_version: an integer");
    }
    p.min_release_version = m->get<uint64_t>();
  }
  if (auto r = targets.custom.find("revoked_releases"); r != targets.custom.end()) {
    if (!r->is_array() || r->size() > 10000) {
      return absl::InvalidArgumentError("targets.json.custom.revoked_releases: a list expected");
    }
    for (const auto& v : *r) {
      if (!v.is_number_unsigned()) {
        return absl::InvalidArgumentError(
            "targets.json.custom.revoked_releases: integers expected");
      }
      p.revoked.insert(v.get<uint64_t>());
    }
  }
  return p;
}

absl::Status CheckRelease(const ReleasePolicy& policy, uint64_t release_version) {
  if (release_version < policy.min_release_version) {
    return VerificationFailed(
        "release.min_version",
        absl::StrCat("release ", release_version, " is below the channel's minimum release ",
                     policy.min_release_version));
  }
  if (policy.revoked.count(release_version)) {
    return VerificationFailed("release.revoked",
                              absl::StrCat("release ", release_version, " is revoked (revoked: ",
                                           absl::StrJoin(policy.revoked, ", "), ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<FoundTarget> FindTarget(const Targets& targets, std::span<const uint8_t> sha256,
                                       uint64_t length) {
  for (const auto& [name, tf] : targets.targets) {
    auto h = tf.hashes.find("sha256");
    if (h == tf.hashes.end() || tf.length != length ||
        !std::equal(h->second.begin(), h->second.end(), sha256.begin(), sha256.end())) {
      continue;
    }
    FoundTarget found{name, 0, ""};
    if (tf.custom.is_object()) {
      if (auto v = tf.custom.find("release_version"); v != tf.custom.end()) {
        if (!v->is_number_unsigned()) {
          return absl::InvalidArgumentError(
              absl::StrCat("targets.json.targets.", name, ".custom.release_version: an integer"));
        }
        found.release_version = v->get<uint64_t>();
      }
      if (auto k = tf.custom.find("kind"); k != tf.custom.end() && k->is_string()) {
        found.kind = k->get<std::string>();
      }
    }
    return found;
  }
  return VerificationFailed(
      "release.target",
      absl::StrCat("no target of targets version ", targets.envelope.version, " has SHA-256 ",
                   HexEncode(sha256), " and ", length, " bytes (not a release of this channel)"));
}

absl::StatusOr<LoggedTargets> VerifyTargetsLogged(Fetcher& fetcher, const std::string& log_url,
                                                  const Key& log_key,
                                                  std::span<const uint8_t> targets_bytes,
                                                  uint64_t version,
                                                  const std::optional<tlog::Checkpoint>& trusted) {
  LoggedTargets out;
  ASSIGN_OR_RETURN(auto cp_bytes,
                   FetchLogFile(fetcher, log_url, "checkpoint.json", tlog::kMaxCheckpointSize,
                                "tlog.checkpoint.signature"));
  ASSIGN_OR_RETURN(out.checkpoint, tlog::VerifyCheckpoint(cp_bytes, log_key));
  out.checkpoint_bytes = cp_bytes;
  // The entry of this targets version.
  ASSIGN_OR_RETURN(auto index_bytes,
                   FetchLogFile(fetcher, log_url, absl::StrCat("targets/", version, ".json"),
                                kMaxLogIndexFile, "tlog.entry"));
  auto index = ParseLogIndex(index_bytes);
  if (!index.ok()) {
    return VerificationFailed(
        "tlog.entry", absl::StrCat("log targets/", version, ".json: ", index.status().message()));
  }
  out.index = *index;
  if (out.index >= out.checkpoint.size) {
    return VerificationFailed("tlog.entry",
                              absl::StrCat("targets version ", version, " is entry ", out.index,
                                           ", the checkpoint has ", out.checkpoint.size));
  }
  ASSIGN_OR_RETURN(auto entry_bytes,
                   FetchLogFile(fetcher, log_url, absl::StrCat("entries/", out.index, ".json"),
                                kMaxLogEntry, "tlog.entry"));
  auto entry = ParseLogEntry(entry_bytes);
  if (!entry.ok()) {
    return VerificationFailed(
        "tlog.entry", absl::StrCat("log entries/", out.index, ".json: ", entry.status().message()));
  }
  const std::string want = HexEncode(*tpm::Hash(tpm::kAlgSha256, targets_bytes));
  if (entry->targets_version != version || entry->targets_sha256 != want) {
    return VerificationFailed(
        "tlog.entry",
        absl::StrCat("log entry ", out.index, " does not record targets version ", version,
                     " with SHA-256 ", want, " (it records version ", entry->targets_version,
                     ", SHA-256 ", entry->targets_sha256, ")"));
  }
  ASSIGN_OR_RETURN(
      auto proof_bytes,
      FetchLogFile(fetcher, log_url, absl::StrCat("proofs/inclusion-", out.index, ".json"),
                   tlog::kMaxProofFileSize, "tlog.inclusion"));
  ASSIGN_OR_RETURN(auto proof, tlog::ParseInclusionProof(proof_bytes));
  if (proof.index != out.index) {
    return VerificationFailed("tlog.inclusion", absl::StrCat("the proof is for entry ", proof.index,
                                                             ", not ", out.index));
  }
  RETURN_IF_ERROR(tlog::VerifyEntry(entry_bytes, proof, out.checkpoint));
  if (trusted) {
    if (trusted->log != out.checkpoint.log) {
      return VerificationFailed("tlog.consistency",
                                absl::StrCat("the trusted checkpoint is of log '", trusted->log,
                                             "', this one of '", out.checkpoint.log, "'"));
    }
    if (trusted->size > out.checkpoint.size) {
      return VerificationFailed(
          "tlog.consistency",
          absl::StrCat("the log shrank: a checkpoint of ", trusted->size,
                       " entries was trusted before, the log now shows ", out.checkpoint.size));
    }
    if (trusted->size == out.checkpoint.size || trusted->size == 0) {
      if (trusted->size != 0 && trusted->root != out.checkpoint.root) {
        return VerificationFailed(
            "tlog.consistency",
            absl::StrCat("two roots for ", trusted->size, " entries: ", HexEncode(trusted->root),
                         " trusted, ", HexEncode(out.checkpoint.root), " now (a fork)"));
      }
    } else {
      ASSIGN_OR_RETURN(auto cons_bytes,
                       FetchLogFile(fetcher, log_url,
                                    absl::StrCat("proofs/consistency-", trusted->size, ".json"),
                                    tlog::kMaxProofFileSize, "tlog.consistency"));
      ASSIGN_OR_RETURN(auto cons, tlog::ParseConsistencyProof(cons_bytes));
      RETURN_IF_ERROR(tlog::VerifyExtends(*trusted, out.checkpoint, cons));
    }
    out.extends_size = trusted->size;
  }
  return out;
}

}  // namespace attest::tuf
