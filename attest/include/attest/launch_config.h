// The launch configuration (DESIGN §3, issue 5): what the VM is given at launch and measured —
// SNP HOST_DATA = SHA-256(bytes), TDX MRCONFIGID = SHA-384(bytes), and the first runtime event.
// The digests are over the exact file bytes; the parser is strict (unknown keys, wrong types and
// out-of-range values are malformed input) so that two readers never disagree on what a measured
// configuration means. Schema: docs/launch-config.md.
#ifndef ATTEST_LAUNCH_CONFIG_H_
#define ATTEST_LAUNCH_CONFIG_H_

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace attest {

inline constexpr size_t kMaxLaunchConfigSize = 256 * 1024;

struct AllowedClient {
  std::optional<std::string> subject;                  // RFC 2253 form, exact match
  std::optional<std::array<uint8_t, 32>> spki_sha256;  // SHA-256 of the SubjectPublicKeyInfo DER
};

struct LaunchConfig {
  uint32_t version = 1;
  std::string listen;                               // host:port (port 0: pick one)
  std::vector<std::vector<uint8_t>> client_ca_der;  // CA(s) issuing client certificates
  std::vector<AllowedClient> allowed_clients;       // at least one
  double requests_per_second = 0;                   // per client, > 0
  uint32_t burst = 0;                               // per client, >= 1
  uint64_t query_budget = 0;                        // per client, total; 0 = unlimited
  std::string container_image;  // OCI layout dir or oci-archive path (empty with sealed_model)
  std::optional<std::array<uint8_t, 32>> container_digest;  // expected manifest SHA-256
  std::string container_runner = "systemd";                 // "systemd" or "namespaces"
  uint64_t container_memory_max_mib = 0;                    // 0: no MemoryMax=
  uint64_t container_cpu_quota_percent = 0;                 // 0: no CPUQuota=
  // "auto" (probed at start: docs/cloud.md), "snp", "tdx", "azure", "vtpm-only", "software-snp",
  // "software-tdx"
  std::string platform;
  std::string tcti;       // e.g. "device:/dev/tpmrm0", "swtpm:host=127.0.0.1,port=2321"
  std::string tpm_trust;  // "in_tcb" or "host"
  std::optional<std::array<uint8_t, 32>> release_root_sha256;
  // A sealed model (issue 10, docs/sealed-model.md) instead of container.image: the sealed layout
  // (appliance-release seal-model), its model id, and the key service that releases its key
  // (HOST:PORT, pinned by the SHA-256 of its TLS key's SubjectPublicKeyInfo).
  struct SealedModel {
    std::string path;
    std::string model_id;
    std::string key_service;
    std::array<uint8_t, 32> key_service_spki_sha256{};
  };
  std::optional<SealedModel> sealed_model;

  std::array<uint8_t, 32> sha256{};  // of the exact bytes parsed (HOST_DATA)
  std::array<uint8_t, 48> sha384{};  // of the exact bytes parsed (MRCONFIGID)
};

// Parses and validates; InvalidArgument names the offending key.
absl::StatusOr<LaunchConfig> ParseLaunchConfig(std::span<const uint8_t> bytes);

}  // namespace attest

#endif  // ATTEST_LAUNCH_CONFIG_H_
