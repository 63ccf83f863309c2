#include "tuf_repo.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "attest/encoding.h"
#include "attest/tpm/hash_alg.h"
#include "attest/tuf/metadata.h"

namespace attest::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

json Hashes(const std::string& bytes) {
  auto d = tpm::Hash(tpm::kAlgSha256,
                     std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  auto d5 = tpm::Hash(tpm::kAlgSha512,
                      std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  return {{"sha256", HexEncode(*d)}, {"sha512", HexEncode(*d5)}};
}

}  // namespace

TufKey TufKey::Ed25519() {
  TufKey k;
  k.key_ = std::make_shared<appliance::release::SigningKey>(
      *appliance::release::SigningKey::Generate("ed25519"));
  return k;
}

TufKey TufKey::EcdsaP256() {
  TufKey k;
  k.key_ = std::make_shared<appliance::release::SigningKey>(
      *appliance::release::SigningKey::Generate("ecdsa"));
  return k;
}

std::string TufRepo::Expires(const std::string& role) const {
  auto it = role_expires.find(role);
  return tuf::FormatUtc(it == role_expires.end() ? expires : it->second);
}

TufRepo::TufRepo(fs::path dir) : dir_(std::move(dir)) {
  fs::create_directories(dir_ / "targets");
  for (const char* role : {"root", "timestamp", "snapshot", "targets"}) {
    keys[role] = {TufKey::Ed25519()};
    thresholds[role] = 1;
  }
  keys["snapshot"] = {TufKey::EcdsaP256()};
}

json TufRepo::RootSigned() const {
  json k = json::object(), roles = json::object();
  for (const auto& [role, list] : keys) {
    json ids = json::array();
    for (const auto& key : list) {
      k[key.id()] = key.public_json();
      ids.push_back(key.id());
    }
    roles[role] = {{"keyids", ids}, {"threshold", thresholds.at(role)}};
  }
  return {{"_type", "root"},
          {"spec_version", "1.0.31"},
          {"version", root_version},
          {"expires", Expires("root")},
          {"consistent_snapshot", consistent_snapshot},
          {"keys", k},
          {"roles", roles}};
}

json TufRepo::TimestampSigned(const std::string& snapshot_bytes) const {
  json t = {{"_type", "timestamp"},
            {"spec_version", "1.0.31"},
            {"version", timestamp_version},
            {"expires", Expires("timestamp")},
            {"meta",
             {{"snapshot.json",
               {{"version", snapshot_version},
                {"length", snapshot_bytes.size()},
                {"hashes", Hashes(snapshot_bytes)}}}}}};
  if (issued) t["issued"] = tuf::FormatUtc(*issued);
  return t;
}

json TufRepo::SnapshotSigned(
    const std::string& targets_bytes,
    const std::map<std::string, std::pair<uint64_t, std::string>>& delegated_bytes) const {
  json s = {{"_type", "snapshot"},
            {"spec_version", "1.0.31"},
            {"version", snapshot_version},
            {"expires", Expires("snapshot")},
            {"meta",
             {{"targets.json",
               {{"version", targets_version},
                {"length", targets_bytes.size()},
                {"hashes", Hashes(targets_bytes)}}}}}};
  for (const auto& [name, vb] : delegated_bytes) {
    s["meta"][name + ".json"] = {
        {"version", vb.first}, {"length", vb.second.size()}, {"hashes", Hashes(vb.second)}};
  }
  return s;
}

json TufRepo::TargetsSigned() const {
  json t = json::object();
  for (const auto& [name, content] : target_files) {
    t[name] = {{"length", content.size()}, {"hashes", Hashes(content)}};
    if (auto c = target_custom.find(name); c != target_custom.end()) t[name]["custom"] = c->second;
  }
  json out = {{"_type", "targets"},
              {"spec_version", "1.0.31"},
              {"version", targets_version},
              {"expires", Expires("targets")},
              {"targets", t}};
  if (!delegations.is_null()) out["delegations"] = delegations;
  return out;
}

std::string TufRepo::Envelope(const json& signed_part, const std::vector<TufKey>& signers) {
  const std::string canonical = *tuf::CanonicalJson(signed_part);
  json sigs = json::array();
  for (const auto& k : signers) sigs.push_back({{"keyid", k.id()}, {"sig", k.SignHex(canonical)}});
  return json{{"signed", signed_part}, {"signatures", sigs}}.dump(1);
}

void TufRepo::Write(const std::string& name, const std::string& bytes) const {
  fs::create_directories((dir_ / name).parent_path());
  std::ofstream(dir_ / name, std::ios::binary | std::ios::trunc) << bytes;
}

std::string TufRepo::PublishRoot(const std::vector<TufKey>& extra_signers) {
  std::vector<TufKey> signers = keys.at("root");
  signers.insert(signers.end(), extra_signers.begin(), extra_signers.end());
  const std::string root = Envelope(RootSigned(), signers);
  Write(absl::StrCat(root_version, ".root.json"), root);
  return root;
}

void TufRepo::PublishAll() {
  for (const auto& [name, content] : target_files) {
    Write("targets/" + name, content);
    if (consistent_snapshot) {
      Write("targets/" + Hashes(content)["sha256"].get<std::string>() + "." + name, content);
    }
  }
  std::map<std::string, std::pair<uint64_t, std::string>> delegated_bytes;
  for (const auto& [role, d] : delegated) {
    json files = json::object();
    for (const auto& [name, content] : d.files) {
      files[name] = {{"length", content.size()}, {"hashes", Hashes(content)}};
      Write("targets/" + name, content);
    }
    const std::string bytes = Envelope({{"_type", "targets"},
                                        {"spec_version", "1.0.31"},
                                        {"version", d.version},
                                        {"expires", Expires(role)},
                                        {"targets", files}},
                                       d.signers);
    Write(role + ".json", bytes);
    Write(absl::StrCat(d.version, ".", role, ".json"), bytes);
    delegated_bytes[role] = {d.version, bytes};
  }
  const std::string targets = Envelope(TargetsSigned(), keys.at("targets"));
  const std::string snapshot =
      Envelope(SnapshotSigned(targets, delegated_bytes), keys.at("snapshot"));
  const std::string timestamp = Envelope(TimestampSigned(snapshot), keys.at("timestamp"));
  Write("targets.json", targets);
  Write(absl::StrCat(targets_version, ".targets.json"), targets);
  Write("snapshot.json", snapshot);
  Write(absl::StrCat(snapshot_version, ".snapshot.json"), snapshot);
  Write("timestamp.json", timestamp);
}

}  // namespace attest::testing
