// libFuzzer target: what appliance-launch reads back from a libvirt host (guest/launch/
// domain_xml.h), which may be remote and is not ours: our domain <metadata> element and the
// host's domain capabilities.
#include <cstddef>
#include <cstdint>
#include <string>

#include "domain_xml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)appliance::launch::ParseLaunchMetadata(text);
  (void)appliance::launch::ParseDomainCapabilities(text);
  return 0;
}
