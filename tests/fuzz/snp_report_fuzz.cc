// libFuzzer target: the SEV-SNP report parser and the TCB decoders.
#include <cstddef>
#include <cstdint>
#include <span>

#include "attest/snp/report.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  auto report = attest::snp::ParseReport(bytes);
  if (report.ok()) {
    for (auto product : {attest::snp::Product::kMilan, attest::snp::Product::kTurin}) {
      auto tcb = attest::snp::DecodeTcb(report->reported_tcb, product);
      if (tcb.ok()) (void)attest::snp::TcbToString(*tcb);
    }
    (void)report->cpuid_product();
  }
  return 0;
}
