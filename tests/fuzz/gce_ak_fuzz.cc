// libFuzzer target: what the supervisor reads from Google Cloud's vTPM NV indices on start
// (supervisor/tpm.h): the AK template (0x01c10001) and the AK certificate (0x01c10000), both
// possibly zero padded.
#include <cstddef>
#include <cstdint>
#include <span>

#include "supervisor/tpm.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> nv(data, size);
  auto tmpl = appliance::supervisor::GceAkTemplate(nv);
  if (tmpl.ok() && (tmpl->empty() || tmpl->size() > size)) __builtin_trap();
  auto cert = appliance::supervisor::GceAkCertificate(nv);
  if (cert.ok() && (cert->empty() || cert->size() > size)) __builtin_trap();
  return 0;
}
