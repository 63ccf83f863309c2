// The operator's side of the transparency log (appliance-release log-init / log-append /
// log-prove; docs/release-channel.md). A log directory holds:
//   log.json          {"name": ..., "key": <TUF public key JSON of the log key>}
//   entries/N.json    entry N's exact bytes (N from 0)
//   checkpoint.json   the signed tree head over all entries (attest/tlog.h)
//   proofs/inclusion-I.json, proofs/consistency-M.json   for a static server: every entry's
//                     inclusion proof and every older size's consistency proof (M → size), against
//                     the current checkpoint (rewritten on every append, before the checkpoint)
// The log's private key (Ed25519) lives outside it as encrypted PKCS#8 PEM (AES-256-CBC, key
// derived from the passphrase with OpenSSL's PBKDF2); it is never printed.
#ifndef IMAGE_RELEASE_LOG_H_
#define IMAGE_RELEASE_LOG_H_

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "keys.h"

namespace appliance::release {

absl::Status LogInit(const std::filesystem::path& log_dir, const std::string& name,
                     const std::filesystem::path& key_out, const std::string& passphrase);
// Appends the entry's bytes; returns its index. Signs a new checkpoint.
absl::StatusOr<uint64_t> LogAppend(const std::filesystem::path& log_dir, const SigningKey& key,
                                   std::span<const uint8_t> entry);
absl::StatusOr<uint64_t> LogAppend(const std::filesystem::path& log_dir,
                                   const std::filesystem::path& key_file,
                                   const std::string& passphrase,
                                   const std::filesystem::path& entry_file);
// Inclusion proof of entry `index` in the tree of `size` entries (0: the whole log), as JSON.
absl::StatusOr<std::string> LogProveInclusion(const std::filesystem::path& log_dir, uint64_t index,
                                              uint64_t size);
absl::StatusOr<std::string> LogProveConsistency(const std::filesystem::path& log_dir,
                                                uint64_t size1, uint64_t size2);

}  // namespace appliance::release

#endif  // IMAGE_RELEASE_LOG_H_
