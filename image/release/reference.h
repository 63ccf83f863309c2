// `appliance-release reference IMAGE_DIR`: the reference values of a built image
// (docs/reference-values.md, docs/image.md), computed from the build's artifacts only, so that
// anyone who rebuilds the image gets the same file.
#ifndef IMAGE_RELEASE_REFERENCE_H_
#define IMAGE_RELEASE_REFERENCE_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace appliance::release {

struct ReferenceArgs {
  std::filesystem::path image_dir;                     // scripts/build-image's output folder
  std::vector<uint16_t> banks;                         // TPM banks to precompute (default: SHA-256)
  std::optional<std::filesystem::path> launch_config;  // pins launch_config_sha256 when given
  // SEV-SNP launch digest of the image's measured direct boot (kernel, initrd, cmdline files)
  // under this SNP-capable OVMF, as QEMU launches it.
  std::optional<std::filesystem::path> snp_ovmf;
  uint32_t snp_vcpus = 2;
  std::string snp_vcpu_type = "EPYC-v4";
};

// The reference values as JSON text. InvalidArgument: a missing or malformed input (exit 2);
// FailedPrecondition: the artifacts disagree with each other, e.g. the UKI's command line does not
// carry the verity root hash (exit 1).
absl::StatusOr<std::string> BuildReference(const ReferenceArgs& args);

}  // namespace appliance::release

#endif  // IMAGE_RELEASE_REFERENCE_H_
