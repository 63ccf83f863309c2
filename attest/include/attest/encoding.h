// Hex and base64 (base64 on OpenSSL's EVP encoder).
#ifndef ATTEST_ENCODING_H_
#define ATTEST_ENCODING_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace attest {

// Lowercase hex.
std::string HexEncode(std::span<const uint8_t> bytes);
// Accepts upper and lower case; rejects odd lengths and non-hex characters.
absl::StatusOr<std::vector<uint8_t>> HexDecode(absl::string_view hex);

std::string Base64Encode(std::span<const uint8_t> bytes);
// Standard alphabet with padding; whitespace is not allowed.
absl::StatusOr<std::vector<uint8_t>> Base64Decode(absl::string_view text);
// The URL-safe alphabet ("-", "_") without padding (JWK, Azure IMDS); the decoder accepts the
// padding present or not.
std::string Base64UrlEncode(std::span<const uint8_t> bytes);
absl::StatusOr<std::vector<uint8_t>> Base64UrlDecode(absl::string_view text);
// DER certificates as concatenated PEM blocks; fails on bytes that are not a certificate.
absl::StatusOr<std::string> CertificatesToPem(const std::vector<std::vector<uint8_t>>& ders);

}  // namespace attest

#endif  // ATTEST_ENCODING_H_
