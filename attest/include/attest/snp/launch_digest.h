// Precomputes the launch digest a confidential VM's hardware reports (issue 7 item 4): the
// SEV-SNP MEASUREMENT (SHA-384 chain of PAGE_INFO structures, AMD SEV-SNP Firmware ABI,
// SNP_LAUNCH_UPDATE) and the SEV / SEV-ES launch digests (SHA-256), for a given OVMF, optional
// kernel / initrd / cmdline (measured direct boot through the SEV hashes table), vCPU count and
// signature, VMM (QEMU, EC2, GCE) and guest features; also SNP with an SVSM (Coconut) below OVMF.
// Everything read from the firmware files (the OVMF footer GUID table, the SEV metadata sections,
// the SVSM's) is bounded and checked; docs/image.md lists every structure and rule.
#ifndef ATTEST_SNP_LAUNCH_DIGEST_H_
#define ATTEST_SNP_LAUNCH_DIGEST_H_

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace attest::snp {

enum class LaunchMode {
  kSnp,          // SEV-SNP launch digest (SHA-384)
  kSnpOvmfHash,  // only the digest after the OVMF pages (to precompute once per firmware)
  kSnpSvsm,      // SEV-SNP with an SVSM mapped below OVMF and its vars
  kSev,          // SEV launch digest (SHA-256)
  kSevEs,        // SEV-ES launch digest (SHA-256)
};
// "snp", "sev-snp", "snp:ovmf-hash", "snp:svsm", "sev-snp:svsm", "sev", "seves", "sev-es";
// case-insensitive.
absl::StatusOr<LaunchMode> ParseLaunchMode(absl::string_view name);
std::string LaunchModeName(LaunchMode mode);

enum class Vmm { kQemu, kEc2, kGce };
absl::StatusOr<Vmm> ParseVmm(absl::string_view name);  // qemu, ec2, gce (case-insensitive)
std::string VmmName(Vmm vmm);

// CPUID(1).EAX of a family/model/stepping (family > 15 uses the extended family field).
uint32_t VcpuSignature(uint32_t family, uint32_t model, uint32_t stepping);
// QEMU CPU model names: EPYC, EPYC-v1..v4, EPYC-IBPB, EPYC-Rome(-v1..v4), EPYC-Milan(-v1..v3),
// EPYC-Genoa(-v1), EPYC-Turin(-v1) (case-insensitive).
absl::StatusOr<uint32_t> VcpuSignatureOfType(absl::string_view type);

// The firmware facts the digest depends on, parsed from an OVMF (or SVSM) image.
struct FirmwareSection {
  uint32_t gpa = 0, size = 0, type = 0;  // type: 1 SEC_MEM, 2 SECRETS, 3 CPUID, 4 SVSM_CAA,
                                         // 0x10 KERNEL_HASHES
};
struct FirmwareInfo {
  uint64_t size = 0;
  uint64_t gpa = 0;  // where its last byte ends at 4 GiB (OVMF) or below OVMF (SVSM)
  std::optional<uint32_t> sev_es_reset_eip;  // SEV-ES reset block: the APs' start address
  std::optional<uint32_t> hashes_table_gpa, hashes_table_size;  // SEV hashes table
  std::optional<uint32_t> svsm_entry_offset;                    // SVSM info
  std::vector<FirmwareSection> sections;                        // SEV metadata, in file order
  bool has_kernel_hashes_section() const;
};
// Parses the footer GUID table and the SEV metadata of a firmware image mapped so that it ends
// at `end_gpa` (4 GiB for OVMF). Bounded: at most 64 MiB, 64 table entries, 64 sections.
absl::StatusOr<FirmwareInfo> ParseFirmware(std::span<const uint8_t> image, uint64_t end_gpa,
                                           absl::string_view what);

// SHA-256 of the measured-direct-boot blobs as QEMU puts them into the SEV hashes table.
struct KernelHashes {
  std::array<uint8_t, 32> kernel{}, initrd{}, cmdline{};
};
// `initrd` absent hashes as an empty file; `append` absent as an empty command line; the
// cmdline hash covers the string and its terminating NUL.
KernelHashes HashesOf(std::span<const uint8_t> kernel,
                      std::optional<std::span<const uint8_t>> initrd,
                      std::optional<absl::string_view> append);
// The 176-byte SEV hashes table (168 bytes of GUIDs, lengths and hashes, zero-padded).
std::vector<uint8_t> SevHashesTable(const KernelHashes& hashes);

struct LaunchInputs {
  LaunchMode mode = LaunchMode::kSnp;
  std::span<const uint8_t> ovmf;
  std::optional<KernelHashes> kernel;  // absent: no -kernel (no hashes table measured)
  uint32_t vcpus = 1;
  std::optional<uint32_t> vcpu_signature;  // required for QEMU (it goes into the VMSA's RDX)
  Vmm vmm = Vmm::kQemu;
  uint64_t guest_features = 0x1;  // SEV_FEATURES of the VMSA (SNP; SEV-ES uses 0)
  std::optional<std::array<uint8_t, 48>> ovmf_hash;  // SNP: a precomputed OVMF-page digest
  std::span<const uint8_t> svsm;                     // kSnpSvsm: the SVSM image
  uint64_t vars_size = 0;                            // kSnpSvsm: size of the OVMF_VARS file
};

// The digest: 48 bytes for the SNP modes, 32 for SEV and SEV-ES. InvalidArgument names the bad
// input (e.g. a kernel with an OVMF that cannot measure it, a missing vCPU signature).
absl::StatusOr<std::vector<uint8_t>> LaunchDigest(const LaunchInputs& in);

}  // namespace attest::snp

#endif  // ATTEST_SNP_LAUNCH_DIGEST_H_
