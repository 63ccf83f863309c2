// libFuzzer target: TPMS_ATTEST, TPMT_SIGNATURE and TPMT_PUBLIC handling (tpm2-tss MU underneath).
// The first byte picks the parser so that one corpus covers all three.
#include <cstddef>
#include <cstdint>
#include <span>

#include "attest/tpm/ak.h"
#include "attest/tpm/quote.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::span<const uint8_t> bytes(data + 1, size - 1);
  using namespace attest::tpm;  // NOLINT
  switch (data[0] % 3) {
    case 0: {
      auto q = ParseQuote(bytes);
      if (q.ok()) {
        PcrBanks pcrs;
        for (const auto& sel : q->selections) {
          for (uint32_t pcr : sel.pcrs)
            pcrs[sel.hash_alg][pcr] = std::vector<uint8_t>(HashAlgSize(sel.hash_alg), 0);
        }
        attest::CheckLog log;
        (void)CheckPcrDigest(*q, kAlgSha256, pcrs, log);
      }
      break;
    }
    case 1: {
      AkPublicKey ak;
      ak.type = kAlgRsa;
      ak.bits = 2048;
      (void)ParseQuoteSignature(bytes, SignatureFormat::kAuto, ak);
      break;
    }
    default: {
      auto ak = ParseAkTpmtPublic(bytes);
      if (ak.ok()) (void)QuoteVerifier::Create(*ak);
      break;
    }
  }
  return 0;
}
