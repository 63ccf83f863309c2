// PE/COFF images as UEFI firmware measures them: the section table (what systemd-stub reads to
// find a UKI's .linux, .cmdline, ... sections) and the Authenticode image digest (what the
// firmware extends into PCR 4 for every EFI application it starts, Microsoft "Windows
// Authenticode Portable Executable Signature Format", as EDK2's measured boot computes it).
//
// The parser reads outside bytes (a UKI or boot loader from an image under test): every offset
// and size is checked against the file before use, and sizes are bounded.
#ifndef ATTEST_BOOT_PE_H_
#define ATTEST_BOOT_PE_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace attest::boot {

inline constexpr size_t kMaxPeSize = 512u * 1024 * 1024;  // a UKI with its initrd: ≈ 50 MiB
inline constexpr size_t kMaxPeSections = 96;              // the PE format's own limit

struct PeSection {
  std::string name;  // up to 8 characters, NULs removed
  uint32_t virtual_size = 0;
  uint32_t virtual_address = 0;
  uint32_t raw_size = 0;
  uint32_t raw_offset = 0;
};

struct PeImage {
  bool pe32_plus = false;
  uint16_t machine = 0;
  uint32_t size_of_headers = 0;
  size_t checksum_offset = 0;                 // the optional header's CheckSum field
  std::optional<size_t> security_dir_offset;  // the certificate table's data directory entry
  uint32_t certificate_table_size = 0;        // bytes of attached signatures at the end
  std::vector<PeSection> sections;            // in table order
};

absl::StatusOr<PeImage> ParsePe(std::span<const uint8_t> file);

// The section's bytes as loaded in memory: VirtualSize bytes, raw data followed by zeros where
// VirtualSize exceeds the raw size (what systemd-stub measures). nullopt if the name is absent.
absl::StatusOr<std::optional<std::vector<uint8_t>>> PeSectionData(std::span<const uint8_t> file,
                                                                  const PeImage& pe,
                                                                  const std::string& name);

// The Authenticode digest with the TPM hash algorithm `alg` (attest/tpm/hash_alg.h): headers
// without CheckSum and the certificate table entry, sections in file order, then any trailing
// data except the attached certificates.
absl::StatusOr<std::vector<uint8_t>> AuthenticodeDigest(std::span<const uint8_t> file,
                                                        uint16_t alg);

}  // namespace attest::boot

#endif  // ATTEST_BOOT_PE_H_
