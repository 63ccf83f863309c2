#include "attest/launch_config.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/str_cat.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/seal/sealed_image.h"
#include "attest/status.h"
#include "common/openssl_util.h"

namespace attest {
namespace {

using nlohmann::json;

absl::Status Bad(const std::string& key, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat("launch config: '", key, "' ", why));
}

// Object with exactly the allowed keys (and the required ones present).
absl::Status Keys(const json& j, const std::string& where, const std::set<std::string>& allowed,
                  const std::set<std::string>& required) {
  if (!j.is_object()) return Bad(where, "must be an object");
  for (const auto& [k, v] : j.items()) {
    if (!allowed.contains(k)) return Bad(where.empty() ? k : where + "." + k, "is not a known key");
  }
  for (const auto& k : required) {
    if (!j.contains(k)) return Bad(where.empty() ? k : where + "." + k, "is required");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> String(const json& j, const std::string& key, size_t max = 4096) {
  if (!j.is_string()) return Bad(key, "must be a string");
  const auto& s = j.get_ref<const std::string&>();
  if (s.empty() || s.size() > max)
    return Bad(key, absl::StrCat("must have 1 to ", max, " characters"));
  return s;
}

absl::StatusOr<std::array<uint8_t, 32>> Hex32(const json& j, const std::string& key,
                                              const std::string& prefix = "") {
  ASSIGN_OR_RETURN(std::string s, String(j, key, 128));
  if (!prefix.empty()) {
    if (s.rfind(prefix, 0) != 0) return Bad(key, absl::StrCat("must start with '", prefix, "'"));
    s = s.substr(prefix.size());
  }
  auto bytes = HexDecode(s);
  if (!bytes.ok() || bytes->size() != 32) return Bad(key, "must be 64 hex digits");
  std::array<uint8_t, 32> out{};
  std::copy(bytes->begin(), bytes->end(), out.begin());
  return out;
}

absl::StatusOr<uint64_t> Unsigned(const json& j, const std::string& key, uint64_t min,
                                  uint64_t max) {
  if (!j.is_number_unsigned() && !(j.is_number_integer() && j.get<int64_t>() >= 0))
    return Bad(key, "must be a non-negative integer");
  uint64_t v = j.get<uint64_t>();
  if (v < min || v > max) return Bad(key, absl::StrCat("must be between ", min, " and ", max));
  return v;
}

absl::StatusOr<std::string> OneOf(const json& j, const std::string& key,
                                  const std::set<std::string>& values) {
  ASSIGN_OR_RETURN(std::string s, String(j, key, 64));
  if (!values.contains(s)) return Bad(key, absl::StrCat("has an unknown value '", s, "'"));
  return s;
}

}  // namespace

absl::StatusOr<LaunchConfig> ParseLaunchConfig(std::span<const uint8_t> bytes) {
  if (bytes.size() > kMaxLaunchConfigSize) {
    return absl::InvalidArgumentError(absl::StrCat("launch config: ", bytes.size(),
                                                   " bytes (at most ", kMaxLaunchConfigSize, ")"));
  }
  json j = json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("launch config: not valid JSON");
  RETURN_IF_ERROR(Keys(j, "",
                       {"version", "listen", "client_ca_pem", "allowed_clients", "limits",
                        "container", "platform", "tpm", "release_root_sha256", "sealed_model"},
                       {"version", "listen", "client_ca_pem", "allowed_clients", "limits",
                        "container", "platform", "tpm"}));
  LaunchConfig c;
  ASSIGN_OR_RETURN(uint64_t version, Unsigned(j["version"], "version", 1, 1));
  c.version = static_cast<uint32_t>(version);
  ASSIGN_OR_RETURN(c.listen, String(j["listen"], "listen", 255));
  auto colon = c.listen.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == c.listen.size() ||
      !std::all_of(c.listen.begin() + colon + 1, c.listen.end(), ::isdigit) ||
      c.listen.size() - colon - 1 > 5 || std::stoul(c.listen.substr(colon + 1)) > 65535) {
    return Bad("listen", "must be host:port");
  }
  ASSIGN_OR_RETURN(std::string ca_pem, String(j["client_ca_pem"], "client_ca_pem", 64 * 1024));
  auto ca = ParseCertificates(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(ca_pem.data()), ca_pem.size()),
      "client_ca_pem");
  if (!ca.ok()) return Bad("client_ca_pem", absl::StrCat("is not PEM: ", ca.status().message()));
  c.client_ca_der = *ca;

  const json& clients = j["allowed_clients"];
  if (!clients.is_array() || clients.empty() || clients.size() > 1024)
    return Bad("allowed_clients", "must be a list of 1 to 1024 identities");
  for (size_t i = 0; i < clients.size(); ++i) {
    std::string where = absl::StrCat("allowed_clients[", i, "]");
    RETURN_IF_ERROR(Keys(clients[i], where, {"subject", "spki_sha256"}, {}));
    AllowedClient a;
    if (clients[i].contains("subject")) {
      ASSIGN_OR_RETURN(a.subject, String(clients[i]["subject"], where + ".subject", 1024));
    }
    if (clients[i].contains("spki_sha256")) {
      ASSIGN_OR_RETURN(a.spki_sha256, Hex32(clients[i]["spki_sha256"], where + ".spki_sha256"));
    }
    if (!a.subject && !a.spki_sha256) return Bad(where, "needs 'subject' or 'spki_sha256'");
    c.allowed_clients.push_back(std::move(a));
  }

  const json& limits = j["limits"];
  RETURN_IF_ERROR(Keys(limits, "limits", {"requests_per_second", "burst", "query_budget"},
                       {"requests_per_second", "burst"}));
  if (!limits["requests_per_second"].is_number() ||
      !(limits["requests_per_second"].get<double>() > 0) ||
      limits["requests_per_second"].get<double>() > 1e6)
    return Bad("limits.requests_per_second", "must be a number in (0, 1e6]");
  c.requests_per_second = limits["requests_per_second"].get<double>();
  ASSIGN_OR_RETURN(uint64_t burst, Unsigned(limits["burst"], "limits.burst", 1, 1000000));
  c.burst = static_cast<uint32_t>(burst);
  if (limits.contains("query_budget")) {
    ASSIGN_OR_RETURN(c.query_budget,
                     Unsigned(limits["query_budget"], "limits.query_budget", 0, UINT64_MAX));
  }

  const json& container = j["container"];
  RETURN_IF_ERROR(
      Keys(container, "container",
           {"image", "expected_digest", "runner", "memory_max_mib", "cpu_quota_percent"}, {}));
  if (j.contains("sealed_model")) {
    const json& sm = j["sealed_model"];
    RETURN_IF_ERROR(Keys(sm, "sealed_model",
                         {"path", "model_id", "key_service", "key_service_spki_sha256"},
                         {"path", "model_id", "key_service", "key_service_spki_sha256"}));
    LaunchConfig::SealedModel m;
    ASSIGN_OR_RETURN(m.path, String(sm["path"], "sealed_model.path"));
    ASSIGN_OR_RETURN(m.model_id, String(sm["model_id"], "sealed_model.model_id", 128));
    if (!seal::CheckModelId(m.model_id).ok()) {
      return Bad("sealed_model.model_id", "must be 1-128 characters of [A-Za-z0-9._:-]");
    }
    ASSIGN_OR_RETURN(m.key_service, String(sm["key_service"], "sealed_model.key_service", 255));
    if (m.key_service.rfind(':') == std::string::npos || m.key_service.back() == ':') {
      return Bad("sealed_model.key_service", "must be host:port");
    }
    ASSIGN_OR_RETURN(m.key_service_spki_sha256,
                     Hex32(sm["key_service_spki_sha256"], "sealed_model.key_service_spki_sha256"));
    c.sealed_model = std::move(m);
    if (container.contains("image")) {
      return Bad("container.image", "must be absent with sealed_model (the model is sealed)");
    }
  } else {
    if (!container.contains("image")) return Bad("container.image", "is required");
    ASSIGN_OR_RETURN(c.container_image, String(container["image"], "container.image"));
  }
  if (container.contains("runner")) {
    ASSIGN_OR_RETURN(c.container_runner,
                     OneOf(container["runner"], "container.runner", {"systemd", "namespaces"}));
  }
  if (container.contains("memory_max_mib")) {
    ASSIGN_OR_RETURN(c.container_memory_max_mib, Unsigned(container["memory_max_mib"],
                                                          "container.memory_max_mib", 16, 1 << 20));
  }
  if (container.contains("cpu_quota_percent")) {
    ASSIGN_OR_RETURN(
        c.container_cpu_quota_percent,
        Unsigned(container["cpu_quota_percent"], "container.cpu_quota_percent", 1, 100000));
  }
  if (container.contains("expected_digest")) {
    ASSIGN_OR_RETURN(c.container_digest,
                     Hex32(container["expected_digest"], "container.expected_digest", "sha256:"));
  }

  ASSIGN_OR_RETURN(c.platform, OneOf(j["platform"], "platform",
                                     {"auto", "snp", "tdx", "azure", "vtpm-only", "software-snp",
                                      "software-tdx"}));
  const json& tpm = j["tpm"];
  RETURN_IF_ERROR(Keys(tpm, "tpm", {"tcti", "trust"}, {"tcti", "trust"}));
  ASSIGN_OR_RETURN(c.tcti, String(tpm["tcti"], "tpm.tcti", 1024));
  ASSIGN_OR_RETURN(c.tpm_trust, OneOf(tpm["trust"], "tpm.trust", {"in_tcb", "host"}));
  if (j.contains("release_root_sha256")) {
    ASSIGN_OR_RETURN(c.release_root_sha256, Hex32(j["release_root_sha256"], "release_root_sha256"));
  }

  auto d256 = ossl::Sha256(bytes);
  auto d384 = ossl::Sha384(bytes);
  std::copy(d256.begin(), d256.end(), c.sha256.begin());
  std::copy(d384.begin(), d384.end(), c.sha384.begin());
  return c;
}

}  // namespace attest
