// TLS pieces shared by the supervisor and the attested client (DESIGN §7). No gRPC here.
#ifndef ATTEST_CLIENT_TLS_H_
#define ATTEST_CLIENT_TLS_H_

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace attest::client {

// Makes every SSL_CTX this process creates refuse TLS 1.2 and below. gRPC 1.51 has no public
// minimum-version setter and calls SSL_CTX_set_min_proto_version(TLS1_2) itself, which overrides
// a configured MinProtocol; the `Protocol = -TLSv1.2` command of OpenSSL's system_default section
// sets SSL_OP_NO_TLSv1_2 instead, which survives. The configuration is loaded from memory (no
// file) once, after OpenSSL's own, and before the first SSL_CTX: call it at start-up.
absl::Status PinTls13Only();

// An EC P-256 key generated in memory and a self-signed certificate over it. The private key
// exists only as this PEM string in memory; it is never written anywhere.
struct TlsIdentity {
  std::string key_pem;
  std::string cert_pem;
  std::vector<uint8_t> spki_der;  // SubjectPublicKeyInfo of the certificate
};
absl::StatusOr<TlsIdentity> GenerateSelfSignedIdentity(absl::string_view common_name,
                                                       absl::Duration validity);

// A private key PEM as encrypted PKCS#8 (AES-256-CBC under a PBKDF2 key from `passphrase`), for
// a key that must survive a restart (the key service's TLS key); and back to a plain PEM string
// in memory (PermissionDenied for a wrong passphrase).
absl::StatusOr<std::string> EncryptPrivateKeyPem(absl::string_view key_pem,
                                                 const std::string& passphrase);
absl::StatusOr<std::string> DecryptPrivateKeyPem(absl::string_view encrypted_pem,
                                                 const std::string& passphrase);

// The first certificate of a PEM text: its subject (RFC 2253) and SubjectPublicKeyInfo.
struct CertIdentity {
  std::string subject;
  std::vector<uint8_t> spki_der;
  std::array<uint8_t, 32> spki_sha256{};
};
absl::StatusOr<CertIdentity> IdentityOfPemCertificate(absl::string_view pem);

std::vector<uint8_t> PlainSha256(std::span<const uint8_t> bytes);

}  // namespace attest::client

#endif  // ATTEST_CLIENT_TLS_H_
