// A TPM attestation key (AK) public key, from the forms verifiers receive it in: a marshalled
// TPMT_PUBLIC, a PEM SubjectPublicKeyInfo, or an RSA JWK (Azure's runtime data, `HCLAkPub`).
#ifndef ATTEST_TPM_AK_H_
#define ATTEST_TPM_AK_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "attest/check.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY, kept opaque here

namespace attest::tpm {

inline constexpr uint16_t kAlgRsa = 0x0001;
inline constexpr uint16_t kAlgEcc = 0x0023;
inline constexpr uint16_t kAlgRsassa = 0x0014;
inline constexpr uint16_t kAlgRsapss = 0x0016;
inline constexpr uint16_t kAlgEcdsa = 0x0018;

// Upper bound for AK inputs (a TPMT_PUBLIC is < 1 KiB; a JWK set a few KiB).
inline constexpr size_t kMaxAkInputSize = 64 * 1024;

struct AkPublicKey {
  uint16_t type = 0;  // kAlgRsa or kAlgEcc
  int bits = 0;       // RSA modulus or curve size
  // The decoded key, shared: decoding and encoding keys is slow in OpenSSL 3.0, so it is done once.
  std::shared_ptr<evp_pkey_st> key;
  // From a TPMT_PUBLIC only:
  std::optional<std::vector<uint8_t>> tpmt_public;
  std::optional<std::vector<uint8_t>> name;  // nameAlg || H_nameAlg(TPMT_PUBLIC)
  uint16_t scheme = 0x0010;                  // TPM_ALG_NULL unless the key fixes a signing scheme
  uint16_t scheme_hash = 0x0010;
  uint32_t object_attributes = 0;

  // "RSA-2048" / "ECC NIST P-256".
  std::string Describe() const;
};

// The key as DER SubjectPublicKeyInfo.
absl::StatusOr<std::vector<uint8_t>> AkSpkiDer(const AkPublicKey& ak);

absl::StatusOr<AkPublicKey> ParseAkTpmtPublic(std::span<const uint8_t> bytes);
absl::StatusOr<AkPublicKey> ParseAkPem(std::span<const uint8_t> bytes);
// A bare RSA JWK, or a JWK set ({"keys": [...]}, possibly with other members) from which the key
// with `kid` is taken.
absl::StatusOr<AkPublicKey> ParseAkJwk(absl::string_view json, absl::string_view kid);
// Detects the form: "-----BEGIN" → PEM, "{" → JWK, else TPMT_PUBLIC.
absl::StatusOr<AkPublicKey> ParseAkAuto(std::span<const uint8_t> bytes, absl::string_view kid);

// A TPM AK must be a restricted signing key: the TPM signs with a restricted key only digests it
// produced itself, so such a key cannot sign a forged TPMS_ATTEST. Checked where the attributes
// are known (TPMT_PUBLIC); check "tpm.ak.attributes".
absl::Status CheckAkAttributes(const AkPublicKey& ak, CheckLog& log);

// The AK's TPM Name (nameAlg || H(TPMT_PUBLIC)) equals `expected`: it covers every byte of the
// public area. Check "tpm.ak.name".
absl::Status CheckAkName(const AkPublicKey& ak, std::span<const uint8_t> expected, CheckLog& log);

// The AK certificate (DER or PEM) chains to one of the self-signed roots among `ca_certs` (the
// others are intermediates) at `now`, and certifies exactly `ak`'s public key. Check
// "tpm.ak.certificate".
absl::Status VerifyAkCertificate(const AkPublicKey& ak, std::span<const uint8_t> cert,
                                 const std::vector<std::vector<uint8_t>>& ca_certs, absl::Time now,
                                 CheckLog& log);

}  // namespace attest::tpm

#endif  // ATTEST_TPM_AK_H_
