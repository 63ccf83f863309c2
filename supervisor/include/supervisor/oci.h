// Model container measurement (issue 5 item 6, DESIGN §6 step 5): an OCI image layout directory
// or an `oci-archive` tarball. Every blob (manifest, config, layers) is checked against its
// descriptor's size and SHA-256 before anything is used — blobs are hashed in parallel across
// cores, streamed in 1 MiB reads (memory: one buffer per thread) — and only then is the manifest
// digest returned for the runtime log. Layers are unpacked by our own extractor on top of
// libarchive's reader: regular files, directories, symlinks and hard links only (devices and
// fifos rejected), OCI whiteouts applied, set-id bits dropped, absolute paths, `..` components,
// paths through a symlink and links that leave the root rejected.
//
// The layout must live where the host cannot change it after measurement: the dm-verity root of
// the image, or (for an oci-archive) the supervisor's private directory it is extracted into.
#ifndef SUPERVISOR_OCI_H_
#define SUPERVISOR_OCI_H_

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace appliance::supervisor {

struct OciDescriptor {
  std::string media_type;
  std::string digest;  // "sha256:<64 hex>"
  std::array<uint8_t, 32> sha256{};
  uint64_t size = 0;
};

struct OciLimits {
  uint64_t max_total_bytes = 64ull << 30;     // sum of blob sizes
  uint64_t max_unpacked_bytes = 64ull << 30;  // sum of unpacked file sizes
  size_t max_layers = 128;
  size_t max_json_bytes = 4 << 20;  // index, manifest, config
  size_t max_entries = 1 << 20;     // tar entries over all layers
  unsigned threads = 0;             // 0: every core
};

struct OciImage {
  std::filesystem::path layout;
  OciDescriptor manifest;  // its digest is what the runtime log records
  OciDescriptor config;
  std::vector<OciDescriptor> layers;
  std::vector<std::string> argv;  // config Entrypoint + Cmd
  std::vector<std::string> env;
  std::string working_dir;
  uint64_t blob_bytes = 0;  // bytes hashed
};

// Verifies an OCI image layout directory (oci-layout, index.json with one manifest — or one for
// linux/amd64 — the manifest, config and every layer blob).
absl::StatusOr<OciImage> VerifyOciLayout(const std::filesystem::path& dir,
                                         const OciLimits& limits = {});

// `image` is a layout directory, or an oci-archive that is first extracted (regular files and
// directories only) into `work_dir`/layout, a directory created here with mode 0700.
absl::StatusOr<OciImage> LoadOciImage(const std::filesystem::path& image,
                                      const std::filesystem::path& work_dir,
                                      const OciLimits& limits = {});

// Unpacks the verified layers, in order, into `rootfs` (created, must not exist).
absl::Status UnpackLayers(const OciImage& image, const std::filesystem::path& rootfs,
                          const OciLimits& limits = {});

// Streams a file through SHA-256; fails when its size differs from `expected_size`.
absl::StatusOr<std::array<uint8_t, 32>> Sha256File(const std::filesystem::path& path,
                                                   uint64_t expected_size);

}  // namespace appliance::supervisor

#endif  // SUPERVISOR_OCI_H_
