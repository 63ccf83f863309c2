#include "tuf_repo.h"

#include <openssl/pem.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "attest/encoding.h"
#include "attest/tpm/hash_alg.h"
#include "attest/tuf/metadata.h"

namespace attest::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string Expires(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

json Hashes(const std::string& bytes) {
  auto d = tpm::Hash(tpm::kAlgSha256,
                     std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  auto d5 = tpm::Hash(tpm::kAlgSha512,
                      std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  return {{"sha256", HexEncode(*d)}, {"sha512", HexEncode(*d5)}};
}

std::string IdOf(const json& pub) {
  auto key = tuf::ParseKey(pub);
  return key->KeyId();
}

}  // namespace

TufKey TufKey::Ed25519() {
  TufKey k;
  EVP_PKEY* raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  k.key_.reset(raw, EVP_PKEY_free);
  uint8_t pub[32];
  size_t n = sizeof(pub);
  EVP_PKEY_get_raw_public_key(raw, pub, &n);
  k.public_json_ = {{"keytype", "ed25519"},
                    {"scheme", "ed25519"},
                    {"keyval", {{"public", HexEncode(std::span(pub, n))}}}};
  k.id_ = IdOf(k.public_json_);
  return k;
}

TufKey TufKey::EcdsaP256() {
  TufKey k;
  EVP_PKEY* raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  k.key_.reset(raw, EVP_PKEY_free);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, raw);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  k.public_json_ = {
      {"keytype", "ecdsa"}, {"scheme", "ecdsa-sha2-nistp256"}, {"keyval", {{"public", pem}}}};
  k.id_ = IdOf(k.public_json_);
  return k;
}

std::string TufKey::SignHex(const std::string& message) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ed = public_json_["keytype"] == "ed25519";
  EVP_DigestSignInit(ctx, nullptr, ed ? nullptr : EVP_sha256(), nullptr, key_.get());
  size_t n = 0;
  EVP_DigestSign(ctx, nullptr, &n, reinterpret_cast<const uint8_t*>(message.data()),
                 message.size());
  std::vector<uint8_t> sig(n);
  EVP_DigestSign(ctx, sig.data(), &n, reinterpret_cast<const uint8_t*>(message.data()),
                 message.size());
  EVP_MD_CTX_free(ctx);
  sig.resize(n);
  return HexEncode(sig);
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
          {"expires", Expires(expires)},
          {"consistent_snapshot", consistent_snapshot},
          {"keys", k},
          {"roles", roles}};
}

json TufRepo::TimestampSigned(const std::string& snapshot_bytes) const {
  return {{"_type", "timestamp"},
          {"spec_version", "1.0.31"},
          {"version", timestamp_version},
          {"expires", Expires(expires)},
          {"meta",
           {{"snapshot.json",
             {{"version", snapshot_version},
              {"length", snapshot_bytes.size()},
              {"hashes", Hashes(snapshot_bytes)}}}}}};
}

json TufRepo::SnapshotSigned(const std::string& targets_bytes) const {
  return {{"_type", "snapshot"},
          {"spec_version", "1.0.31"},
          {"version", snapshot_version},
          {"expires", Expires(expires)},
          {"meta",
           {{"targets.json",
             {{"version", targets_version},
              {"length", targets_bytes.size()},
              {"hashes", Hashes(targets_bytes)}}}}}};
}

json TufRepo::TargetsSigned() const {
  json t = json::object();
  for (const auto& [name, content] : target_files) {
    t[name] = {{"length", content.size()}, {"hashes", Hashes(content)}};
    if (auto c = target_custom.find(name); c != target_custom.end()) t[name]["custom"] = c->second;
  }
  return {{"_type", "targets"},
          {"spec_version", "1.0.31"},
          {"version", targets_version},
          {"expires", Expires(expires)},
          {"targets", t}};
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
  const std::string targets = Envelope(TargetsSigned(), keys.at("targets"));
  const std::string snapshot = Envelope(SnapshotSigned(targets), keys.at("snapshot"));
  const std::string timestamp = Envelope(TimestampSigned(snapshot), keys.at("timestamp"));
  Write("targets.json", targets);
  Write(absl::StrCat(targets_version, ".targets.json"), targets);
  Write("snapshot.json", snapshot);
  Write(absl::StrCat(snapshot_version, ".snapshot.json"), snapshot);
  Write("timestamp.json", timestamp);
}

}  // namespace attest::testing
