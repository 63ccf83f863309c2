#include "attest/keyd/policy.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "attest/encoding.h"
#include "attest/seal/sealed_image.h"
#include "attest/status.h"
#include "common/openssl_util.h"
#include "nlohmann/json.hpp"

namespace attest::keyd {
namespace {

using json = nlohmann::json;

absl::Status Bad(const std::string& key, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("policy: '", key, "' ", what));
}

const std::set<std::string>& KnownPlatforms() {
  static const std::set<std::string> k = {"snp", "tdx", "vtpm-only"};
  return k;
}

absl::StatusOr<std::vector<uint64_t>> Versions(const json& j, const std::string& key) {
  if (!j.is_array() || j.size() > 1024) return Bad(key, "must be a list of release versions");
  std::vector<uint64_t> out;
  for (const auto& v : j) {
    if (!v.is_number_unsigned()) return Bad(key, "must be a list of release versions");
    out.push_back(v.get<uint64_t>());
  }
  return out;
}

}  // namespace

absl::StatusOr<ModelPolicy> ParseModelPolicy(std::span<const uint8_t> bytes) {
  if (bytes.size() > kMaxPolicySize) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy: ", bytes.size(), " bytes (at most ", kMaxPolicySize, ")"));
  }
  const json j = json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("policy: not a JSON object");
  }
  static const std::set<std::string> kKeys = {
      "version",         "model_id", "platforms", "launch_config_sha256", "min_release_version",
      "revoked_releases"};
  for (const auto& [k, v] : j.items()) {
    if (!kKeys.contains(k)) return Bad(k, "is not a policy key");
  }
  for (const char* k : {"version", "model_id", "platforms", "launch_config_sha256"}) {
    if (!j.contains(k)) return Bad(k, "is missing");
  }
  ModelPolicy p;
  if (!j["version"].is_number_unsigned() || j["version"].get<uint64_t>() != 1) {
    return Bad("version", "must be 1");
  }
  if (!j["model_id"].is_string()) return Bad("model_id", "must be a string");
  p.model_id = j["model_id"].get<std::string>();
  if (auto s = seal::CheckModelId(p.model_id); !s.ok()) return Bad("model_id", s.ToString());
  const json& platforms = j["platforms"];
  if (!platforms.is_array() || platforms.empty() || platforms.size() > 3) {
    return Bad("platforms", "must list 1 to 3 of snp, tdx, vtpm-only");
  }
  for (const auto& v : platforms) {
    if (!v.is_string() || !KnownPlatforms().contains(v.get<std::string>())) {
      return Bad("platforms", "must list 1 to 3 of snp, tdx, vtpm-only");
    }
    p.platforms.insert(v.get<std::string>());
  }
  const json& configs = j["launch_config_sha256"];
  if (!configs.is_array() || configs.empty() || configs.size() > 1024) {
    return Bad("launch_config_sha256", "must list 1 to 1024 SHA-256 values");
  }
  for (const auto& v : configs) {
    auto d = v.is_string() ? HexDecode(v.get<std::string>())
                           : absl::StatusOr<std::vector<uint8_t>>(absl::InvalidArgumentError(""));
    if (!d.ok() || d->size() != 32) {
      return Bad("launch_config_sha256", "must list SHA-256 values (64 hex digits)");
    }
    std::array<uint8_t, 32> a{};
    std::copy(d->begin(), d->end(), a.begin());
    p.launch_config_sha256.push_back(a);
  }
  if (j.contains("min_release_version")) {
    if (!j["min_release_version"].is_number_unsigned()) {
      return Bad("min_release_version", "must be a release version");
    }
    p.min_release_version = j["min_release_version"].get<uint64_t>();
  }
  if (j.contains("revoked_releases")) {
    ASSIGN_OR_RETURN(auto v, Versions(j["revoked_releases"], "revoked_releases"));
    p.revoked_releases.insert(v.begin(), v.end());
  }
  return p;
}

std::string SerializeModelPolicy(const ModelPolicy& p) {
  json j = {{"version", p.version},
            {"model_id", p.model_id},
            {"platforms", std::vector<std::string>(p.platforms.begin(), p.platforms.end())}};
  json configs = json::array();
  for (const auto& d : p.launch_config_sha256) configs.push_back(HexEncode(d));
  j["launch_config_sha256"] = configs;
  if (p.min_release_version) j["min_release_version"] = *p.min_release_version;
  if (!p.revoked_releases.empty()) {
    j["revoked_releases"] =
        std::vector<uint64_t>(p.revoked_releases.begin(), p.revoked_releases.end());
  }
  return j.dump(2) + "\n";
}

EvidenceExpectations ExpectationsFor(const ModelPolicy& policy, const ReferenceValues& reference,
                                     std::vector<uint8_t> nonce,
                                     std::vector<uint8_t> client_spki_der,
                                     std::vector<uint8_t> key_request_spki_der,
                                     std::vector<uint8_t> launch_config) {
  EvidenceExpectations e;
  e.nonce = std::move(nonce);
  e.tls_spki_der = std::move(client_spki_der);
  e.key_request_spki_der = std::move(key_request_spki_der);
  e.launch_config = std::move(launch_config);
  e.reference = &reference;
  e.allow_vtpm_only = policy.platforms.contains("vtpm-only");
  e.min_release_version = policy.min_release_version;
  e.revoked_releases = policy.revoked_releases;
  e.before_container = true;
  return e;
}

absl::Status CheckLaunchConfig(const ModelPolicy& policy, std::span<const uint8_t> launch_config,
                               CheckLog& log) {
  const auto d = ossl::Sha256(launch_config);
  const bool ok = std::any_of(
      policy.launch_config_sha256.begin(), policy.launch_config_sha256.end(),
      [&](const std::array<uint8_t, 32>& a) { return std::equal(a.begin(), a.end(), d.begin()); });
  return log.Expect(
      ok, "policy.launch-config",
      ok ? HexEncode(d)
         : absl::StrCat("the appliance's launch configuration has SHA-256 ", HexEncode(d),
                        ", which the policy of model '", policy.model_id, "' does not list"));
}

absl::Status CheckPlatform(const ModelPolicy& policy, const VerifiedEvidence& verified,
                           CheckLog& log) {
  const bool ok = policy.platforms.contains(verified.platform);
  return log.Expect(
      ok, "policy.platform",
      ok ? verified.platform
         : absl::StrCat("evidence from platform '", verified.platform, "'; the policy accepts ",
                        absl::StrJoin(policy.platforms, ", ")));
}

}  // namespace attest::keyd
