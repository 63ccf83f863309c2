// libFuzzer target: a whole appliance.v1.Evidence bundle through VerifyEvidence (protobuf parse,
// binding, SNP report and certificates, Azure HCL report, TPM quote, CEL log), with fixed
// expectations, and again unbound (issue 11).
#include <cstddef>
#include <cstdint>
#include <span>

#include "attest/evidence.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const attest::ReferenceValues* reference = [] {
    auto* r = new attest::ReferenceValues();
    r->container_digests.push_back({});
    r->snp_measurements.push_back({});
    r->runtime_events = {attest::kEventLaunchConfig, attest::kEventContainerManifest};
    return r;
  }();
  attest::EvidenceExpectations e;
  e.nonce.assign(32, 1);
  e.tls_spki_der.assign(91, 2);
  e.launch_config.assign(10, '{');
  e.reference = reference;
  e.allow_vtpm_only = true;
  e.now = absl::FromUnixSeconds(1767225600);
  attest::CheckLog log;
  (void)attest::VerifyEvidence(std::span<const uint8_t>(data, size), e, log);
  // `--unbound` (issue 11): no binding, no reference, every platform's chain still parsed.
  attest::EvidenceExpectations unbound;
  unbound.unbound = true;
  unbound.allow_vtpm_only = true;
  unbound.now = e.now;
  attest::CheckLog unbound_log;
  (void)attest::VerifyEvidence(std::span<const uint8_t>(data, size), unbound, unbound_log);
  return 0;
}
