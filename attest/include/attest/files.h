// Reading outside files with a size bound, and telling PEM from DER.
#ifndef ATTEST_FILES_H_
#define ATTEST_FILES_H_

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace attest {

// Upper bound for a certificate, a CRL or a PEM bundle read from outside.
inline constexpr size_t kMaxCertificateFileSize = 64 * 1024;

// Reads a whole regular file; fails (NotFound / InvalidArgument) if it is missing or larger than
// max_size, so oversized input is rejected before any work is done on it.
absl::StatusOr<std::vector<uint8_t>> ReadFileBounded(const std::filesystem::path& path,
                                                     size_t max_size);

// Digests (TPM_ALG_IDs, e.g. kAlgSha256, kAlgSha512) of a file of any size, read once in chunks.
absl::StatusOr<std::vector<std::vector<uint8_t>>> DigestsOfFile(const std::filesystem::path& path,
                                                                const std::vector<uint16_t>& algs);
// SHA-256 of a file of any size, read in chunks (disk images).
absl::StatusOr<std::vector<uint8_t>> Sha256OfFile(const std::filesystem::path& path);

// Writes `bytes` to PATH.tmp, then renames it over `path`: readers see the old or the new file,
// never a part.
absl::Status WriteFileAtomically(const std::filesystem::path& path, std::span<const uint8_t> bytes);
absl::Status WriteFileAtomically(const std::filesystem::path& path, absl::string_view text);

// A passphrase: the first line of `file` when given, else the environment variable `env`
// (InvalidArgument naming both when neither is set).
absl::StatusOr<std::string> ReadPassphrase(const std::string& file, const char* env);

// True if the bytes look like PEM text ("-----BEGIN ").
bool LooksLikePem(std::span<const uint8_t> bytes);

// Certificates from DER (exactly one certificate, no trailing bytes) or PEM (one or more
// CERTIFICATE blocks, in order). Returns the DER of each; every one is parsed by OpenSSL.
absl::StatusOr<std::vector<std::vector<uint8_t>>> ParseCertificates(std::span<const uint8_t> bytes,
                                                                    absl::string_view what);

// A CRL from DER or PEM; returns its DER after OpenSSL parsed it.
absl::StatusOr<std::vector<uint8_t>> ParseCrl(std::span<const uint8_t> bytes,
                                              absl::string_view what);

}  // namespace attest

#endif  // ATTEST_FILES_H_
