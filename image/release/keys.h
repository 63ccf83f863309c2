// Signing keys of the release channel (issue 8): TUF role keys (Ed25519 or ECDSA P-256) and the
// transparency log's key. A key is generated in memory and written only as encrypted PKCS#8 PEM
// (AES-256-CBC, key derived from the passphrase by OpenSSL's PBKDF2), created with mode 0600 and
// never over an existing file; private key bytes are never printed or logged.
#ifndef IMAGE_RELEASE_KEYS_H_
#define IMAGE_RELEASE_KEYS_H_

#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

typedef struct evp_pkey_st EVP_PKEY;

namespace appliance::release {

inline constexpr size_t kMinPassphrase = 8;

class SigningKey {
 public:
  // "ed25519" or "ecdsa" (ecdsa-sha2-nistp256).
  static absl::StatusOr<SigningKey> Generate(const std::string& type);
  // Decrypts an encrypted PKCS#8 PEM file. PermissionDenied for a wrong passphrase.
  static absl::StatusOr<SigningKey> Load(const std::filesystem::path& file,
                                         const std::string& passphrase);
  // Writes the key encrypted under `passphrase` (at least kMinPassphrase characters), mode 0600;
  // AlreadyExists if `file` exists.
  absl::Status Save(const std::filesystem::path& file, const std::string& passphrase) const;

  // The public key as TUF key JSON, and its TUF key id.
  const nlohmann::json& public_json() const { return public_json_; }
  const std::string& id() const { return id_; }
  // Signature over `message` as TUF metadata carries it (hex; ECDSA as DER over SHA-256).
  std::string SignHex(const std::string& message) const;

 private:
  static absl::StatusOr<SigningKey> Wrap(EVP_PKEY* key);
  std::shared_ptr<EVP_PKEY> key_;
  nlohmann::json public_json_;
  std::string id_;
};

// The passphrase from --passphrase-file FILE (first line) or the environment variable `env`
// ($APPLIANCE_RELEASE_PASSPHRASE for the channel's keys).
absl::StatusOr<std::string> ReadPassphrase(const std::string& file,
                                           const char* env = "APPLIANCE_RELEASE_PASSPHRASE");

}  // namespace appliance::release

#endif  // IMAGE_RELEASE_KEYS_H_
