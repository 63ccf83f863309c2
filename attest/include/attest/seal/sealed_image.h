// Sealed model images (issue 10, docs/sealed-model.md): an OCI image layout whose every file
// (oci-layout, index.json, the manifest, config and layer blobs) is a sealed blob
// (sealed_blob.h) under one random model key, plus a table of contents, itself sealed.
//
// On disk (what the host stores and ships; it learns only sizes and counts):
//   DIR/sealed-model.json      public: {"version": 1, "model_id": ID, "toc": DESC, "blobs": [DESC]}
//                              with DESC = {"digest": "sha256:<hex of the sealed bytes>",
//                              "size": sealed size}
//   DIR/blobs/<hex>            each sealed file, named by the SHA-256 of its sealed bytes
// The table of contents (sealed): {"version": 1, "model_id": ID, "files": [{"path": P,
// "blob": "sha256:<hex>", "size": plaintext size, "sha256": "<plaintext hex>"}]}.
//
// Unsealing writes the plain layout into a memory-backed directory (tmpfs or ramfs; refused
// elsewhere unless the caller says otherwise) and checks each file's size and SHA-256 against the
// table; the layout is then verified and measured like any other (supervisor/oci.h), so the
// runtime log records the plain manifest's digest and reference values do not depend on the
// encryption.
#ifndef ATTEST_SEAL_SEALED_IMAGE_H_
#define ATTEST_SEAL_SEALED_IMAGE_H_

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attest/seal/sealed_blob.h"

namespace attest::seal {

inline constexpr size_t kMaxSealedModelJson = 1 << 20;
inline constexpr size_t kMaxFiles = 4096;

struct SealedDescriptor {
  std::string digest;  // "sha256:<64 hex>" of the sealed bytes
  uint64_t size = 0;   // sealed size
};

struct SealedModel {
  uint32_t version = 1;
  std::string model_id;
  SealedDescriptor toc;
  std::vector<SealedDescriptor> blobs;
};

struct TocEntry {
  std::string path;  // relative, '/'-separated, [A-Za-z0-9._-] components, no "..", depth <= 4
  std::string blob;  // the sealed blob's digest
  uint64_t size = 0;
  std::string sha256;  // of the plaintext, hex
};

struct Toc {
  uint32_t version = 1;
  std::string model_id;
  std::vector<TocEntry> files;
};

// Strict parsers (unknown keys, wrong types, bad digests, bad paths, duplicates: refused).
absl::StatusOr<SealedModel> ParseSealedModel(std::span<const uint8_t> json);
absl::StatusOr<Toc> ParseToc(std::span<const uint8_t> json);
std::string SerializeSealedModel(const SealedModel& m);
std::string SerializeToc(const Toc& t);

// A model id: 1..128 characters of [A-Za-z0-9._:-].
absl::Status CheckModelId(absl::string_view id);

// Seals every regular file of the OCI layout `layout` into `out_dir` (created; must not exist).
struct SealResult {
  SealedModel model;
  Toc toc;
  uint64_t plaintext_bytes = 0;
};
absl::StatusOr<SealResult> SealLayout(const std::filesystem::path& layout,
                                      const std::filesystem::path& out_dir, const ModelKey& key,
                                      const std::string& model_id,
                                      uint32_t chunk_size = kDefaultChunkSize);

struct UnsealOptions {
  bool require_memory_backed = true;  // out_dir's filesystem must be tmpfs or ramfs
  uint64_t max_total_bytes = 64ull << 30;
};
struct UnsealResult {
  std::string model_id;
  uint64_t plaintext_bytes = 0;
  size_t files = 0;
};
// Unseals `sealed_dir` into `out_dir` (created with mode 0700; must not exist). On failure
// everything written is removed, and the error names the file and chunk.
absl::StatusOr<UnsealResult> UnsealLayout(const std::filesystem::path& sealed_dir,
                                          const ModelKey& key, const std::filesystem::path& out_dir,
                                          const UnsealOptions& options = {});

// Whether `dir` is on tmpfs or ramfs (statfs).
absl::StatusOr<bool> IsMemoryBacked(const std::filesystem::path& dir);

}  // namespace attest::seal

#endif  // ATTEST_SEAL_SEALED_IMAGE_H_
