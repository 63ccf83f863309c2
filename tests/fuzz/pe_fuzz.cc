// libFuzzer target: the PE/COFF parser behind the boot-PCR precompute (attest/boot/pe.h) and
// everything that runs on its result: Authenticode digests, a UKI's sections and PCR 11 events.
#include <cstddef>
#include <cstdint>
#include <span>

#include "attest/boot/boot_pcrs.h"
#include "attest/boot/pe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace attest::boot;
  const std::span<const uint8_t> file(data, size);
  auto pe = ParsePe(file);
  if (!pe.ok()) return 0;
  for (const auto& s : pe->sections) (void)PeSectionData(file, *pe, s.name);
  (void)AuthenticodeDigest(file, attest::tpm::kAlgSha256);
  (void)PredictUkiPcr11(file, DefaultPcr11Phases(), {attest::tpm::kAlgSha256});
  BootArtifacts a;
  a.boot_loader = file;
  a.uki = file;
  (void)PredictBoot(a, {attest::tpm::kAlgSha256});
  return 0;
}
