#include "attest/client/tls.h"

#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <mutex>

#include "absl/strings/str_cat.h"
#include "attest/status.h"
#include "common/openssl_util.h"

namespace attest::client {
namespace {

constexpr char kTls13Config[] = R"(openssl_conf = appliance_init
[appliance_init]
ssl_conf = appliance_ssl
[appliance_ssl]
system_default = appliance_tls13
[appliance_tls13]
Protocol = -SSLv3, -TLSv1, -TLSv1.1, -TLSv1.2
MinProtocol = TLSv1.3
)";

std::string PemOf(int (*write)(BIO*, void*), void* obj) {
  ossl::BioPtr bio(BIO_new(BIO_s_mem()));
  if (write(bio.get(), obj) != 1) return "";
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);  // NOLINT(runtime/int)
  return std::string(data, static_cast<size_t>(n));
}

std::string Rfc2253(const X509_NAME* name) {
  ossl::BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return "";
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);  // NOLINT(runtime/int)
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace

absl::Status PinTls13Only() {
  static std::once_flag once;
  static absl::Status result;
  std::call_once(once, [] {
    // OpenSSL's own configuration first, so that it cannot replace ours later.
    OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, nullptr);
    std::unique_ptr<CONF, decltype(&NCONF_free)> conf(NCONF_new(nullptr), NCONF_free);
    ossl::BioPtr bio(BIO_new_mem_buf(kTls13Config, sizeof(kTls13Config) - 1));
    long line = 0;  // NOLINT(runtime/int)
    if (!conf || NCONF_load_bio(conf.get(), bio.get(), &line) <= 0 ||
        CONF_modules_load(conf.get(), nullptr, 0) <= 0) {
      result = absl::InternalError("TLS 1.3 pin: OpenSSL configuration: " + ossl::LastError());
      return;
    }
    // Check that it took: a fresh context must refuse TLS 1.2.
    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_method()), SSL_CTX_free);
    if (!ctx || (SSL_CTX_get_options(ctx.get()) & SSL_OP_NO_TLSv1_2) == 0) {
      result = absl::InternalError("TLS 1.3 pin: SSL_OP_NO_TLSv1_2 not applied to new contexts");
    }
  });
  return result;
}

absl::StatusOr<TlsIdentity> GenerateSelfSignedIdentity(absl::string_view common_name,
                                                       absl::Duration validity) {
  ossl::EvpPkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return absl::InternalError("EC key generation: " + ossl::LastError());
  ossl::X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  uint8_t serial[16];
  RAND_bytes(serial, sizeof(serial));
  serial[0] &= 0x7f;
  ossl::BnPtr bn(BN_bin2bn(serial, sizeof(serial), nullptr));
  BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get()));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), absl::ToInt64Seconds(validity));
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(common_name.data()),
                             static_cast<int>(common_name.size()), -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key.get());
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) {
    return absl::InternalError("self-signed certificate: " + ossl::LastError());
  }
  TlsIdentity id;
  id.key_pem = PemOf(
      [](BIO* b, void* k) {
        return PEM_write_bio_PrivateKey(b, static_cast<EVP_PKEY*>(k), nullptr, nullptr, 0, nullptr,
                                        nullptr);
      },
      key.get());
  id.cert_pem = PemOf([](BIO* b, void* c) { return PEM_write_bio_X509(b, static_cast<X509*>(c)); },
                      cert.get());
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(key.get(), &der);
  if (n <= 0 || id.key_pem.empty() || id.cert_pem.empty()) {
    OPENSSL_free(der);
    return absl::InternalError("TLS identity encoding: " + ossl::LastError());
  }
  id.spki_der.assign(der, der + n);
  OPENSSL_free(der);
  return id;
}

absl::StatusOr<std::string> EncryptPrivateKeyPem(absl::string_view key_pem,
                                                 const std::string& passphrase) {
  ossl::BioPtr in(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  ossl::EvpPkeyPtr key(PEM_read_bio_PrivateKey(in.get(), nullptr, nullptr, nullptr));
  if (!key) return absl::InvalidArgumentError("not a PEM private key: " + ossl::LastError());
  struct Args {
    EVP_PKEY* key;
    const std::string* passphrase;
  } args{key.get(), &passphrase};
  std::string out = PemOf(
      [](BIO* b, void* a) {
        auto* x = static_cast<Args*>(a);
        return PEM_write_bio_PKCS8PrivateKey(b, x->key, EVP_aes_256_cbc(), nullptr, 0, nullptr,
                                             const_cast<char*>(x->passphrase->c_str()));
      },
      &args);
  if (out.empty()) return absl::InternalError("cannot encrypt the key: " + ossl::LastError());
  return out;
}

absl::StatusOr<std::string> DecryptPrivateKeyPem(absl::string_view encrypted_pem,
                                                 const std::string& passphrase) {
  ossl::BioPtr in(BIO_new_mem_buf(encrypted_pem.data(), static_cast<int>(encrypted_pem.size())));
  ossl::EvpPkeyPtr key(
      PEM_read_bio_PrivateKey(in.get(), nullptr, nullptr, const_cast<char*>(passphrase.c_str())));
  if (!key) {
    ERR_clear_error();
    return absl::PermissionDeniedError("cannot decrypt the key (wrong passphrase?)");
  }
  std::string out = PemOf(
      [](BIO* b, void* k) {
        return PEM_write_bio_PrivateKey(b, static_cast<EVP_PKEY*>(k), nullptr, nullptr, 0, nullptr,
                                        nullptr);
      },
      key.get());
  if (out.empty()) return absl::InternalError("key encoding: " + ossl::LastError());
  return out;
}

absl::StatusOr<CertIdentity> IdentityOfPemCertificate(absl::string_view pem) {
  ossl::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  ossl::X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return absl::InvalidArgumentError("not a PEM certificate: " + ossl::LastError());
  CertIdentity id;
  id.subject = Rfc2253(X509_get_subject_name(cert.get()));
  ASSIGN_OR_RETURN(id.spki_der, ossl::SpkiDer(cert.get()));
  auto sha = ossl::Sha256(id.spki_der);
  std::copy(sha.begin(), sha.end(), id.spki_sha256.begin());
  return id;
}

std::vector<uint8_t> PlainSha256(std::span<const uint8_t> bytes) { return ossl::Sha256(bytes); }

}  // namespace attest::client
