// Verification of a whole appliance.v1.Evidence bundle (DESIGN §3-§5) against reference values:
// the binding (nonce, TLS key, AK, runtime log), the platform report, the vTPM quote counted only
// as far as the vTPM is in the trust boundary, and the runtime event log (launch configuration
// and model container). What `appliance-verify connect` and the AttestedChannel run after the
// handshake. The header is free of protobuf and gRPC types: the bundle comes in as bytes.
#ifndef ATTEST_EVIDENCE_H_
#define ATTEST_EVIDENCE_H_

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "attest/boot/boot_pcrs.h"
#include "attest/check.h"
#include "attest/snp/report.h"
#include "attest/tdx/verify.h"

namespace attest {

inline constexpr size_t kMaxEvidenceSize = 1 << 20;
inline constexpr size_t kMaxReferenceValuesSize = 1 << 20;

// Runtime events the supervisor logs (CEL "appliance" records on PCR 15 / RTMR3).
inline constexpr char kEventLaunchConfig[] = "launch-config";            // data: SHA-256(config)
inline constexpr char kEventContainerManifest[] = "container-manifest";  // data: manifest SHA-256
inline constexpr char kEventContainerRestart[] = "container-restart";    // data: manifest SHA-256
inline constexpr char kEventSupervisorRestart[] = "supervisor-restart";  // data: SHA-256(config)
// The running release (issue 8): data = ReleaseEventData(version, target SHA-256); the bundle's
// Evidence.release must name the same (it is authenticated only through this event).
inline constexpr char kEventRelease[] = "release";
// The client-revocation list the supervisor applies (attest/tuf/client_revocations.h): data =
// SHA-256 of the list's bytes; logged at start and whenever the list changes (the last one holds).
inline constexpr char kEventClientRevocations[] = "client-revocations";

// SHA-256 of the canonical JSON {"release_version":N,"target_sha256":"<hex>"}.
std::array<uint8_t, 32> ReleaseEventData(uint64_t release_version,
                                         std::span<const uint8_t> target_sha256);

// Reference values (schema: docs/reference-values.md). Lists are "any of".
struct ReferenceValues {
  uint32_t version = 1;
  std::vector<std::array<uint8_t, 48>> snp_measurements;  // accepted SNP launch digests
  std::optional<snp::TcbVersion> snp_min_tcb;
  bool allow_debug = false;
  // TDX: accepted MRTD values (required for TDX evidence) and, when listed, RTMR0-2.
  std::vector<std::array<uint8_t, 48>> tdx_mrtd;
  std::map<int, std::vector<std::array<uint8_t, 48>>> tdx_rtmr;  // 0-2 → accepted values
  bool tdx_allow_debug = false;
  std::vector<std::string> tdx_accepted_tcb_statuses = {"UpToDate"};
  std::vector<std::array<uint8_t, 32>> container_digests;     // accepted model manifests
  std::vector<std::array<uint8_t, 32>> launch_config_sha256;  // optional: accepted configs
  std::set<std::string> runtime_events;  // allowed event names (default: the four above)
  // The image (informational: what the release names; a coordinator checks the PCRs below).
  std::optional<std::array<uint8_t, 32>> image_disk_sha256, image_uki_sha256, image_verity_root;
  // Boot PCRs of the vTPM quote: bank → PCR → accepted values ("tpm.pcr.reference"), the events
  // expected on them (to name the one that differs) and the PCR 11 phases systemd-pcrphase
  // extends after the firmware-logged events (replayed with the firmware log).
  std::map<uint16_t, std::map<uint32_t, std::vector<std::vector<uint8_t>>>> tpm_pcrs;
  std::vector<boot::ExpectedEvent> tpm_boot_events;
  std::vector<std::string> tpm_pcr11_phases = boot::DefaultPcr11Phases();
};

absl::StatusOr<ReferenceValues> ParseReferenceValues(std::span<const uint8_t> bytes);

// A `--roots DIR`: every tdx_*.pem is a TDX trust anchor, every other *.pem an SEV-SNP one, and
// DIR/tdx-collateral/ (tcb_info.json, qe_identity.json, tcb_info_issuer_chain.pem) TDX collateral.
struct RootsDir {
  std::vector<std::vector<uint8_t>> snp, tdx;
  std::optional<tdx::Collateral> tdx_collateral;
};
absl::StatusOr<RootsDir> LoadRootsDir(const std::string& dir);

struct EvidenceExpectations {
  std::vector<uint8_t> nonce;          // what we sent
  std::vector<uint8_t> tls_spki_der;   // the server key seen in the TLS handshake
  std::vector<uint8_t> launch_config;  // the exact launch configuration bytes we expect
  const ReferenceValues* reference = nullptr;
  bool allow_vtpm_only = false;  // accept evidence whose only runtime proof is a host vTPM
  std::vector<std::vector<uint8_t>> extra_snp_roots_der;  // trusted besides AMD's built-in ARKs
  std::vector<std::vector<uint8_t>> extra_tdx_roots_der;  // trusted besides Intel's SGX root
  std::optional<tdx::Collateral> tdx_collateral;          // TCB info, QE identity (TDX evidence)
  // The release channel's policy (signed targets metadata, attest/tuf/release.h): when set, the
  // appliance must report its release, at or above the minimum and not revoked.
  std::optional<uint64_t> min_release_version;
  std::set<uint64_t> revoked_releases;
  // The channel's client-revocation list (SHA-256 of the signed target): the appliance must apply
  // exactly it (its last "client-revocations" runtime event), else "release.client_revocations".
  std::optional<std::array<uint8_t, 32>> client_revocations_sha256;
  // Key release (issue 10, docs/sealed-model.md): the ephemeral key the appliance asks a model key
  // to be wrapped to. When set, the binding must carry exactly this `key-request` entry (and
  // evidence without it, or with another key, fails "binding.key-request"); when empty, a
  // `key-request` entry is refused (evidence made for a key service is not a coordinator's).
  std::vector<uint8_t> key_request_spki_der;
  // Evidence taken before the model container is measured (the supervisor asks for the model key
  // first): the runtime log need not name a container yet; any container it names must still be
  // in the reference values.
  bool before_container = false;
  // vTPM AK certificates (cloud vTPMs, e.g. Google's EK/AK CA; issue 11): when the evidence
  // carries an AK certificate chain it must chain to one of these self-signed roots at `now` and
  // certify the quote's AK ("tpm.ak.certificate"). None given: the chain is reported unchecked.
  std::vector<std::vector<uint8_t>> tpm_ak_roots_der;
  // Unbound (`appliance-verify evidence --unbound`, issue 11): only the formats, signatures and
  // certificate chains are verified (real vectors carry no appliance binding). The nonce, TLS
  // key, launch configuration and runtime log are not checked, `reference` may be null (then no
  // measurement or PCR is compared), and the result says the evidence is bound to no channel.
  // Never for a coordinator about to send data.
  bool unbound = false;
  absl::Time now = absl::Now();
};

struct VerifiedEvidence {
  bool bound = true;                 // false: --unbound, no channel binding was checked
  std::string platform;              // "snp", "tdx", "azure-snp", "azure-tdx", "vtpm-only"
  std::string tpm_trust;             // "in_tcb", "host", "none"
  std::string runtime_proof;         // what makes the runtime log authentic
  std::string snp_signer;            // e.g. "VCEK (Genoa)"
  std::vector<uint8_t> measurement;  // SNP MEASUREMENT or TDX MRTD
  std::string tcb_status;            // TDX
  std::string ak_source;             // how the quote's AK is trusted (binding, HCL runtime data)
  std::string ak_certificate;        // the AK certificate's subject, when one was verified
  std::array<uint8_t, 32> launch_config_sha256{};
  std::array<uint8_t, 32> container_digest{};  // the last container event
  std::vector<std::string> events;             // event names, in log order
  uint32_t container_restarts = 0;
  std::string supervisor_version;
  std::optional<uint64_t> release_version;  // Evidence.release, checked against the runtime log
  std::array<uint8_t, 32> release_target_sha256{};
};

// Every check appends to `log`; the first failure is returned as VerificationFailed (a failed
// check, exit 1) or InvalidArgument (malformed bundle, exit 2), naming the check.
absl::StatusOr<VerifiedEvidence> VerifyEvidence(std::span<const uint8_t> evidence,
                                                const EvidenceExpectations& expect, CheckLog& log);

}  // namespace attest

#endif  // ATTEST_EVIDENCE_H_
