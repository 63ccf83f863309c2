// Azure's disk format (issue 11, docs/cloud.md): a fixed VHD is the raw disk followed by one
// 512-byte footer (Microsoft's "Virtual Hard Disk Image Format Specification": cookie "conectix",
// big-endian fields, checksum = one's complement of the byte sum of the footer without its
// checksum field). Written here, not by `qemu-img convert -O vpc`, because qemu puts the current
// time and a random UUID into the footer: ours derives both from SOURCE_DATE_EPOCH, so two builds
// give the same VHD. The image hash is over the raw disk, never the footer.
#ifndef IMAGE_RELEASE_VHD_H_
#define IMAGE_RELEASE_VHD_H_

#include <array>
#include <cstdint>
#include <filesystem>

#include "absl/status/status.h"

namespace appliance::release {

inline constexpr size_t kVhdFooterSize = 512;
inline constexpr uint64_t kVhdEpoch = 946684800;  // 2000-01-01T00:00:00Z, the VHD time origin

// The footer of a fixed VHD of `disk_size` bytes (a whole number of MiB: Azure's rule).
std::array<uint8_t, kVhdFooterSize> VhdFixedFooter(uint64_t disk_size, uint64_t source_date_epoch);

// Appends that footer to `path` (the raw disk, copied): its size must be a whole number of MiB
// and the file must not already end in a VHD footer.
absl::Status AppendVhdFooter(const std::filesystem::path& path, uint64_t source_date_epoch);

}  // namespace appliance::release

#endif  // IMAGE_RELEASE_VHD_H_
