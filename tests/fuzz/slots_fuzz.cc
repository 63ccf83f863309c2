// libFuzzer target: what the A/B slot writer reads from a disk the host controls
// (supervisor/slots.h): sfdisk's JSON of the partition table, boot entry file names on the ESP,
// the kernel command line's roothash=.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "supervisor/slots.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  using namespace appliance::supervisor;
  if (auto parts = ParsePartitionTable(text); parts.ok()) {
    for (const auto& p : *parts)
      (void)PartitionUuidOf(p.uuid.size() >= 32 ? p.uuid : std::string(32, '0'));
  }
  (void)ParseBootEntry(text, "appliance");
  (void)RootHashOf(text);
  return 0;
}
