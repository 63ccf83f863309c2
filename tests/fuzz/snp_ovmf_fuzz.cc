// libFuzzer target: the firmware parser of the SEV-SNP launch-digest precompute (OVMF / SVSM
// footer GUID table and SEV metadata), and the digest over it in each mode.
#include <cstddef>
#include <cstdint>
#include <span>

#include "attest/snp/launch_digest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace attest::snp;
  const std::span<const uint8_t> image(data, size);
  (void)ParseFirmware(image, 1ull << 32, "OVMF");
  (void)ParseFirmware(image, 0xFFC00000ull, "SVSM");
  if (size % 4096 != 0 || size == 0) return 0;
  static const std::vector<uint8_t> empty;
  for (LaunchMode mode : {LaunchMode::kSnp, LaunchMode::kSevEs, LaunchMode::kSev}) {
    for (bool kernel : {false, true}) {
      LaunchInputs in;
      in.mode = mode;
      in.ovmf = image;
      in.vcpus = 2;
      in.vcpu_signature = 0x800F12;
      if (kernel) in.kernel = HashesOf(empty, std::nullopt, "console=ttyS0");
      (void)LaunchDigest(in);
    }
  }
  LaunchInputs gce;
  gce.ovmf = image;
  gce.vmm = Vmm::kGce;
  (void)LaunchDigest(gce);
  return 0;
}
