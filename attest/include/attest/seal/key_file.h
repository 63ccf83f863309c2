// A model key at rest (issue 10 item 4, docs/sealed-model.md): encrypted under a key derived
// from a passphrase with OpenSSL's scrypt (N = 2^15, r = 8, p = 1, 16-byte random salt), as
// AES-256-GCM with the model id in the associated data. What `appliance-release seal-model`
// writes into the key service's store and the key service reads at start; the plain key is never
// written anywhere.
//
//   {"version": 1, "model_id": ID, "kdf": {"name": "scrypt", "n": 32768, "r": 8, "p": 1,
//    "salt": B64}, "nonce": B64 (12 bytes), "ciphertext": B64 (32-byte key + 16-byte tag)}
#ifndef ATTEST_SEAL_KEY_FILE_H_
#define ATTEST_SEAL_KEY_FILE_H_

#include <filesystem>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "attest/seal/sealed_blob.h"

namespace attest::seal {

inline constexpr size_t kMinKeyPassphrase = 8;
inline constexpr size_t kMaxKeyFile = 4096;

// The key file's JSON for `key` under `passphrase` (at least kMinKeyPassphrase characters).
absl::StatusOr<std::string> EncryptModelKey(const ModelKey& key, const std::string& model_id,
                                            const std::string& passphrase);
// Strict parse, bounded KDF parameters; PermissionDenied for a wrong passphrase or a file whose
// ciphertext, model id or parameters were changed.
absl::StatusOr<ModelKey> DecryptModelKey(std::span<const uint8_t> json,
                                         const std::string& passphrase,
                                         std::string* model_id = nullptr);

// Writes the key file with mode 0600, never over an existing file (AlreadyExists).
absl::Status WriteModelKeyFile(const std::filesystem::path& file, const ModelKey& key,
                               const std::string& model_id, const std::string& passphrase);
absl::StatusOr<ModelKey> ReadModelKeyFile(const std::filesystem::path& file,
                                          const std::string& passphrase,
                                          std::string* model_id = nullptr);

}  // namespace attest::seal

#endif  // ATTEST_SEAL_KEY_FILE_H_
