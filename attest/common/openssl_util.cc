#include "common/openssl_util.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509_vfy.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "attest/status.h"

namespace attest::ossl {

std::string LastError() {
  unsigned long code = ERR_get_error();  // NOLINT(runtime/int): OpenSSL's type
  if (code == 0) return "no OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

absl::StatusOr<X509Ptr> ParseDerCertificate(std::span<const uint8_t> der, absl::string_view what) {
  const unsigned char* p = der.data();
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));  // NOLINT(runtime/int)
  if (!cert) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": not a DER X.509 certificate (", LastError(), ")"));
  }
  if (p != der.data() + der.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: %u trailing bytes after the DER certificate", what, der.data() + der.size() - p));
  }
  return cert;
}

absl::StatusOr<X509CrlPtr> ParseDerCrl(std::span<const uint8_t> der, absl::string_view what) {
  const unsigned char* p = der.data();
  X509CrlPtr crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));  // NOLINT
  if (!crl) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not a DER CRL (", LastError(), ")"));
  }
  if (p != der.data() + der.size()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": trailing bytes after the DER CRL"));
  }
  return crl;
}

std::vector<uint8_t> ToDer(const X509* cert) {
  unsigned char* buf = nullptr;
  int n = i2d_X509(cert, &buf);
  if (n <= 0) return {};
  std::vector<uint8_t> out(buf, buf + n);
  OPENSSL_free(buf);
  return out;
}

std::string NameToString(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB) < 0) {
    return "?";
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);  // NOLINT(runtime/int)
  return std::string(data, static_cast<size_t>(n));
}

std::string CommonName(const X509_NAME* name) {
  int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return "";
  const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  if (s == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
}

absl::StatusOr<absl::Time> Asn1TimeToAbsl(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    return absl::InvalidArgumentError("invalid ASN.1 time");
  }
  return absl::FromTM(tm, absl::UTCTimeZone());
}

time_t ToTimeT(absl::Time t) { return absl::ToTimeT(t); }

absl::StatusOr<std::string> ChainError(X509* leaf, const std::vector<X509*>& roots,
                                       const std::vector<X509*>& untrusted,
                                       const std::vector<X509_CRL*>& crls, absl::Time now) {
  X509StorePtr store(X509_STORE_new());
  StackOfX509Ptr chain(sk_X509_new_null());
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !chain || !ctx) return absl::ResourceExhaustedError("X509 store allocation failed");
  for (X509* root : roots) X509_STORE_add_cert(store.get(), root);
  for (X509_CRL* crl : crls) X509_STORE_add_crl(store.get(), crl);
  if (!crls.empty())
    X509_STORE_set_flags(store.get(), X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
  for (X509* cert : untrusted) sk_X509_push(chain.get(), cert);
  if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf, chain.get()) != 1) {
    return absl::ResourceExhaustedError("X509_STORE_CTX_init failed");
  }
  X509_STORE_CTX_set_time(ctx.get(), 0, absl::ToTimeT(now));
  if (X509_verify_cert(ctx.get()) == 1) return std::string();
  int err = X509_STORE_CTX_get_error(ctx.get());
  X509* current = X509_STORE_CTX_get_current_cert(ctx.get());
  ERR_clear_error();
  return absl::StrFormat("%s at depth %d (CN=%s; verification time %s)",
                         X509_verify_cert_error_string(err),
                         X509_STORE_CTX_get_error_depth(ctx.get()),
                         current ? CommonName(X509_get_subject_name(current)) : "?",
                         absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", now, absl::UTCTimeZone()));
}

absl::StatusOr<EvpPkeyPtr> EcPublicKey(const char* group, std::span<const uint8_t> point,
                                       bool full_check) {
  std::vector<uint8_t> pub(point.begin(), point.end());
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>(group), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub.data(), pub.size()),
      OSSL_PARAM_construct_end()};
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* key = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("invalid ECC public key (", LastError(), ")"));
  }
  EvpPkeyPtr owned(key);
  EvpPkeyCtxPtr check(EVP_PKEY_CTX_new(owned.get(), nullptr));
  int ok = !check       ? 0
           : full_check ? EVP_PKEY_public_check(check.get())
                        : EVP_PKEY_public_check_quick(check.get());
  if (ok != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("ECC point is not on the curve");
  }
  return owned;
}

absl::StatusOr<std::vector<uint8_t>> EcdsaSignatureDer(std::span<const uint8_t> r,
                                                       std::span<const uint8_t> s) {
  BnPtr br(BN_bin2bn(r.data(), static_cast<int>(r.size()), nullptr));
  BnPtr bs(BN_bin2bn(s.data(), static_cast<int>(s.size()), nullptr));
  EcdsaSigPtr sig(ECDSA_SIG_new());
  if (!br || !bs || !sig || ECDSA_SIG_set0(sig.get(), br.get(), bs.get()) != 1) {
    return absl::ResourceExhaustedError("ECDSA_SIG allocation failed");
  }
  br.release();  // owned by sig now
  bs.release();
  unsigned char* der = nullptr;
  int n = i2d_ECDSA_SIG(sig.get(), &der);
  if (n <= 0) return absl::InternalError("i2d_ECDSA_SIG failed");
  std::vector<uint8_t> out(der, der + n);
  OPENSSL_free(der);
  return out;
}

absl::StatusOr<std::vector<uint8_t>> SpkiDer(const X509* cert) {
  unsigned char* der = nullptr;
  const int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  if (n <= 0) return absl::InvalidArgumentError("certificate public key: " + LastError());
  std::vector<uint8_t> out(der, der + n);
  OPENSSL_free(der);
  return out;
}

std::vector<uint8_t> Sha256(std::span<const uint8_t> data) {
  std::vector<uint8_t> out(SHA256_DIGEST_LENGTH);
  SHA256(data.data(), data.size(), out.data());
  return out;
}

std::vector<uint8_t> Sha384(std::span<const uint8_t> data) {
  std::vector<uint8_t> out(SHA384_DIGEST_LENGTH);
  SHA384(data.data(), data.size(), out.data());
  return out;
}

std::vector<uint8_t> Sha512(std::span<const uint8_t> data) {
  std::vector<uint8_t> out(SHA512_DIGEST_LENGTH);
  SHA512(data.data(), data.size(), out.data());
  return out;
}

absl::StatusOr<std::string> CertificatesToPem(const std::vector<std::vector<uint8_t>>& ders) {
  std::string out;
  for (const auto& der : ders) {
    ASSIGN_OR_RETURN(X509Ptr cert, ParseDerCertificate(der, "certificate"));
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_X509(bio.get(), cert.get()) != 1) {
      return absl::InternalError("PEM_write_bio_X509: " + LastError());
    }
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);  // NOLINT(runtime/int): OpenSSL's type
    out.append(data, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace attest::ossl
