// libFuzzer target: TDX quote parsing (header, bodies, signature data, certification data) and
// the PCK SGX extension decoder on whatever certificate chain the quote carries, and the CCEL
// table.
#include <cstddef>
#include <cstdint>
#include <span>

#include "attest/files.h"
#include "attest/tdx/ccel.h"
#include "attest/tdx/quote.h"
#include "attest/tdx/verify.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size >= 56) (void)attest::tdx::ParseCcelTable(std::span<const uint8_t>(data, 56));
  auto q = attest::tdx::ParseQuote(std::span<const uint8_t>(data, size));
  if (!q.ok()) return 0;
  (void)attest::tdx::DecodeTdAttributes(q->body.td_attributes);
  auto chain = attest::ParseCertificates(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(q->pck_chain_pem.data()),
                               q->pck_chain_pem.size()),
      "fuzz");
  if (chain.ok()) {
    for (const auto& der : *chain) (void)attest::tdx::ParsePckExtensions(der);
  }
  return 0;
}
