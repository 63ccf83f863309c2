// libFuzzer target: TCG2/TCG1 event log parsing, replay and event description.
#include <cstddef>
#include <cstdint>
#include <span>

#include "attest/tpm/eventlog.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto log = attest::tpm::ParseEventLog(std::span<const uint8_t>(data, size));
  if (!log.ok()) return 0;
  for (const auto& e : log->events) (void)attest::tpm::DescribeEvent(e);
  (void)attest::tpm::ReplayEventLog(*log);
  return 0;
}
