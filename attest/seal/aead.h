// Private to libattest (attest/seal/): the two OpenSSL compositions the sealed-model code uses in
// three places — HKDF-SHA-256 to a 32-byte key, and one-shot AES-256-GCM with associated data.
#ifndef ATTEST_SEAL_AEAD_H_
#define ATTEST_SEAL_AEAD_H_

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace attest::seal::aead {

using Key256 = std::array<uint8_t, 32>;
inline constexpr size_t kNonceSize = 12;
inline constexpr size_t kTagSize = 16;

absl::StatusOr<Key256> HkdfSha256(std::span<const uint8_t> key, std::span<const uint8_t> salt,
                                  absl::string_view info);

// ciphertext || 16-byte tag.
absl::StatusOr<std::vector<uint8_t>> Encrypt(const Key256& key, std::span<const uint8_t> nonce,
                                             absl::string_view aad, std::span<const uint8_t> plain);
// PermissionDenied when the tag does not verify (nothing of the plaintext is returned).
absl::StatusOr<std::vector<uint8_t>> Decrypt(const Key256& key, std::span<const uint8_t> nonce,
                                             absl::string_view aad,
                                             std::span<const uint8_t> ciphertext_and_tag);

}  // namespace attest::seal::aead

#endif  // ATTEST_SEAL_AEAD_H_
