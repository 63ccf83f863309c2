// Sealed blobs (issue 10, docs/sealed-model.md): the encrypted form of a model image's blobs
// (manifest, config, layers). A blob is sealed under a per-blob key derived from the model key
// (HKDF-SHA-256, salt = the blob's random id, info "appliance-sealed-blob-v1"), in chunks, each
// AES-256-GCM with its own authentication tag: corruption is detected at the chunk, by index,
// before any of that chunk's plaintext is released.
//
// Layout (all integers big-endian):
//   header (40 bytes): "APPLSEAL" | u32 version (1) | u32 chunk_size | u64 plaintext_size |
//                      16-byte blob id
//   chunk i (0 <= i < n, n = max(1, ceil(plaintext_size / chunk_size))):
//                      ciphertext (chunk_size bytes; the last one the remainder) | 16-byte tag
// Chunk i's nonce is 7 zero bytes | u32 i | 1 byte (1 for the last chunk, else 0) — the STREAM
// construction: chunks cannot be reordered, dropped, or the stream cut at a chunk boundary —
// and its associated data is the header, so the sizes and the id cannot change either.
//
// Everything here is bounded: chunk_size <= 16 MiB, plaintext_size <= 1 TiB, and the input
// must be exactly as long as the header says (no trailing bytes).
#ifndef ATTEST_SEAL_SEALED_BLOB_H_
#define ATTEST_SEAL_SEALED_BLOB_H_

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace attest::seal {

inline constexpr size_t kKeySize = 32;
inline constexpr size_t kHeaderSize = 40;
inline constexpr size_t kTagSize = 16;
inline constexpr uint32_t kVersion = 1;
inline constexpr uint32_t kDefaultChunkSize = 1u << 20;
inline constexpr uint32_t kMaxChunkSize = 16u << 20;
inline constexpr uint64_t kMaxPlaintextSize = 1ull << 40;

using ModelKey = std::array<uint8_t, kKeySize>;

struct SealedHeader {
  uint32_t version = kVersion;
  uint32_t chunk_size = kDefaultChunkSize;
  uint64_t plaintext_size = 0;
  std::array<uint8_t, 16> blob_id{};

  uint64_t chunks() const;
  uint64_t sealed_size() const;  // header + ciphertext + tags
};

// Parses and checks the 40-byte header (InvalidArgument naming the field).
absl::StatusOr<SealedHeader> ParseHeader(std::span<const uint8_t> bytes);
std::array<uint8_t, kHeaderSize> SerializeHeader(const SealedHeader& h);

// A fresh random model key (OpenSSL's DRBG).
absl::StatusOr<ModelKey> NewModelKey();

// Seals `size` bytes read from `in_fd` into `out_fd` (streamed, one chunk in memory). The blob id
// is random. Returns the header written.
absl::StatusOr<SealedHeader> SealFd(int in_fd, uint64_t size, int out_fd, const ModelKey& key,
                                    uint32_t chunk_size = kDefaultChunkSize);

// What opening a sealed blob gave.
struct Opened {
  SealedHeader header;
  uint64_t plaintext_size = 0;
};

// Opens a sealed blob read from `in_fd` (exactly `sealed_size` bytes, e.g. the descriptor's
// size) into `out_fd`. Each chunk is authenticated before its plaintext is written; a failure
// names the chunk ("chunk 7 of 12: authentication failed (tampered or another key)") and what
// was written by then must be discarded by the caller.
absl::StatusOr<Opened> OpenFd(int in_fd, uint64_t sealed_size, int out_fd, const ModelKey& key);

// In memory (tests, small blobs such as the manifest).
absl::StatusOr<std::vector<uint8_t>> Seal(std::span<const uint8_t> plaintext, const ModelKey& key,
                                          uint32_t chunk_size = kDefaultChunkSize);
absl::StatusOr<std::vector<uint8_t>> Open(std::span<const uint8_t> sealed, const ModelKey& key);
// Opens into `out` (at least the plaintext's size; e.g. a mapped memfd): no allocation. Returns
// the plaintext size; on failure `out` holds no plaintext of the failed chunk.
absl::StatusOr<uint64_t> OpenInto(std::span<const uint8_t> sealed, const ModelKey& key,
                                  std::span<uint8_t> out);

}  // namespace attest::seal

#endif  // ATTEST_SEAL_SEALED_BLOB_H_
