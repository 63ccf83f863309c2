// Private to libattest: RAII owners for OpenSSL objects and helpers that read the error queue.
#ifndef ATTEST_COMMON_OPENSSL_UTIL_H_
#define ATTEST_COMMON_OPENSSL_UTIL_H_

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace attest::ossl {

template <auto Fn>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    Fn(p);
  }
};

using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using X509CrlPtr = std::unique_ptr<X509_CRL, Deleter<X509_CRL_free>>;
using X509StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE_free>>;
using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX_free>>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG_free>>;
using Asn1IntegerPtr = std::unique_ptr<ASN1_INTEGER, Deleter<ASN1_INTEGER_free>>;
using Asn1Ia5Ptr = std::unique_ptr<ASN1_IA5STRING, Deleter<ASN1_IA5STRING_free>>;
using Asn1ObjectPtr = std::unique_ptr<ASN1_OBJECT, Deleter<ASN1_OBJECT_free>>;
inline void FreeX509Stack(STACK_OF(X509) * s) { sk_X509_free(s); }
using StackOfX509Ptr = std::unique_ptr<STACK_OF(X509), Deleter<FreeX509Stack>>;

// The last OpenSSL error as text (and clears the queue); "no OpenSSL error" if empty.
std::string LastError();

// Parses exactly one DER certificate (no trailing bytes).
absl::StatusOr<X509Ptr> ParseDerCertificate(std::span<const uint8_t> der, absl::string_view what);
absl::StatusOr<X509CrlPtr> ParseDerCrl(std::span<const uint8_t> der, absl::string_view what);
std::vector<uint8_t> ToDer(const X509* cert);
// The certificate's SubjectPublicKeyInfo, DER.
absl::StatusOr<std::vector<uint8_t>> SpkiDer(const X509* cert);
// DER certificates as concatenated PEM blocks; fails on bytes that are not a certificate.
absl::StatusOr<std::string> CertificatesToPem(const std::vector<std::vector<uint8_t>>& ders);

// "CN=SEV-Milan" style one-line name, and the commonName alone ("" if absent).
std::string NameToString(const X509_NAME* name);
std::string CommonName(const X509_NAME* name);

absl::StatusOr<absl::Time> Asn1TimeToAbsl(const ASN1_TIME* t);
// time_t for X509_VERIFY_PARAM_set_time and friends.
time_t ToTimeT(absl::Time t);

// Verifies `leaf` up to one of `roots` at `now`, with `untrusted` intermediates; when CRLs are
// given every certificate is checked against them. Returns "" when the chain verifies, otherwise
// OpenSSL's reason with the depth, subject and verification time.
absl::StatusOr<std::string> ChainError(X509* leaf, const std::vector<X509*>& roots,
                                       const std::vector<X509*>& untrusted,
                                       const std::vector<X509_CRL*>& crls, absl::Time now);

// An EC public key from an uncompressed point (04 || X || Y) on `group` ("P-256", "P-384", ...).
// EVP_PKEY_fromdata does not check the point; `full_check` adds the order check (n*Q = infinity, a
// scalar multiplication) to the on-curve check, which adds nothing on cofactor-1 curves.
absl::StatusOr<EvpPkeyPtr> EcPublicKey(const char* group, std::span<const uint8_t> point,
                                       bool full_check);

// An ECDSA signature as DER (what EVP_DigestVerify takes) from its r and s, big-endian.
absl::StatusOr<std::vector<uint8_t>> EcdsaSignatureDer(std::span<const uint8_t> r,
                                                       std::span<const uint8_t> s);

// SHA-256 / SHA-384 / SHA-512 of bytes.
std::vector<uint8_t> Sha256(std::span<const uint8_t> data);
std::vector<uint8_t> Sha384(std::span<const uint8_t> data);
std::vector<uint8_t> Sha512(std::span<const uint8_t> data);

}  // namespace attest::ossl

#endif  // ATTEST_COMMON_OPENSSL_UTIL_H_
