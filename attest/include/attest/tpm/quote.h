// TPM2_Quote verification: TPMS_ATTEST (via tpm2-tss MU, offset == size), its signature
// (TPMT_SIGNATURE or a bare RSASSA signature) with an AK, the nonce, and the PCR digest over
// supplied PCR values, hashed with the signing scheme's algorithm (TPM 2.0 Part 3, TPM2_Quote).
#ifndef ATTEST_TPM_QUOTE_H_
#define ATTEST_TPM_QUOTE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "attest/check.h"
#include "attest/tpm/ak.h"
#include "attest/tpm/hash_alg.h"

namespace attest::tpm {

inline constexpr uint32_t kTpmGeneratedValue = 0xff544347;
inline constexpr uint16_t kStAttestQuote = 0x8018;
// A quote is a few hundred bytes; anything above this is rejected before it is unmarshalled.
inline constexpr size_t kMaxQuoteSize = 2048;
inline constexpr size_t kMaxSignatureSize = 1024;

struct PcrSelection {
  uint16_t hash_alg = 0;
  std::vector<uint32_t> pcrs;  // ascending, as the TPM orders them in the digest
};

struct Quote {
  uint32_t magic = 0;
  uint16_t type = 0;
  std::vector<uint8_t> qualified_signer;
  std::vector<uint8_t> extra_data;  // the nonce (qualifying data)
  uint64_t clock = 0;
  uint32_t reset_count = 0;
  uint32_t restart_count = 0;
  bool safe = false;
  uint64_t firmware_version = 0;
  std::vector<PcrSelection> selections;
  std::vector<uint8_t> pcr_digest;
  std::vector<uint8_t> raw;  // the signed bytes
};

// Parses a marshalled TPMS_ATTEST of any type (the verifier checks magic and type).
absl::StatusOr<Quote> ParseQuote(std::span<const uint8_t> bytes);

enum class SignatureFormat { kAuto, kTpmt, kRaw };

struct QuoteSignature {
  uint16_t sig_alg = 0;  // kAlgRsassa, kAlgRsapss, kAlgEcdsa
  uint16_t hash_alg = 0;
  std::vector<uint8_t> rsa;        // RSA signature
  std::vector<uint8_t> ecdsa_der;  // ECDSA as a DER ECDSA-Sig-Value
  bool raw = false;                // given as a bare RSASSA signature
};

// kAuto: a TPMT_SIGNATURE that unmarshals exactly, else a raw signature of the key's size.
// A raw signature is RSASSA with the AK's scheme hash, or SHA-256 when the key fixes none.
absl::StatusOr<QuoteSignature> ParseQuoteSignature(std::span<const uint8_t> bytes,
                                                   SignatureFormat format, const AkPublicKey& ak);

struct QuoteVerifyOptions {
  std::vector<uint8_t> nonce;  // expected qualifying data (may be empty)
  bool skip_nonce = false;     // unbound evidence: the qualifying data is reported, not compared
  bool allow_sha1 = false;     // accept quotes signed with SHA-1
  // When given: every selected PCR must be present and pcrDigest must match.
  std::optional<PcrBanks> pcrs;
  // When given: the AK's TPM Name must equal it (pins every byte of the AK's public area).
  std::optional<std::vector<uint8_t>> expected_ak_name;
};

struct VerifiedQuote {
  Quote quote;
  QuoteSignature signature;
  // The quoted PCR values (from options.pcrs) restricted to the selection, once the digest matched.
  PcrBanks quoted_pcrs;
};

// Verifies quotes signed by one AK; the key is decoded once. Thread-safe.
class QuoteVerifier {
 public:
  static absl::StatusOr<std::unique_ptr<QuoteVerifier>> Create(const AkPublicKey& ak);
  ~QuoteVerifier();

  // Checks (cheapest first): tpm.ak.attributes, tpm.ak.name (if pinned), tpm.quote.magic,
  // tpm.quote.type, tpm.quote.nonce,
  // tpm.signature.scheme, tpm.signature.hash, tpm.signature, then tpm.pcrs.digest when PCRs are
  // given.
  absl::StatusOr<VerifiedQuote> Verify(std::span<const uint8_t> attest,
                                       std::span<const uint8_t> signature, SignatureFormat format,
                                       const QuoteVerifyOptions& options,
                                       CheckLog* log = nullptr) const;

 private:
  struct Impl;
  explicit QuoteVerifier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// pcrDigest check alone: H_alg(concatenation of the selected PCR values in selection order).
absl::Status CheckPcrDigest(const Quote& quote, uint16_t digest_alg, const PcrBanks& pcrs,
                            CheckLog& log, PcrBanks* quoted = nullptr);

}  // namespace attest::tpm

#endif  // ATTEST_TPM_QUOTE_H_
