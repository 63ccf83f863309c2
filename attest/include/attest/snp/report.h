// AMD SEV-SNP ATTESTATION_REPORT (SEV Secure Nested Paging Firmware ABI Specification,
// "ATTESTATION_REPORT Structure" table; report versions 2, 3 and 5).
#ifndef ATTEST_SNP_REPORT_H_
#define ATTEST_SNP_REPORT_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace attest::snp {

inline constexpr size_t kReportSize = 0x4A0;           // 1184 bytes
inline constexpr size_t kSignedRegionSize = 0x2A0;     // the signature covers bytes [0, 0x2A0)
inline constexpr size_t kSignatureComponentSize = 72;  // R and S, little-endian, zero-extended
inline constexpr uint32_t kSignatureAlgoEcdsaP384Sha384 = 1;

enum class Product { kUnknown, kMilan, kGenoa, kTurin };

absl::string_view ProductName(Product p);
// "Milan", "Milan-B0", "Genoa", "Turin" ... (case-sensitive as AMD writes them).
Product ProductFromName(absl::string_view name);
// From CPUID family/model as reported in v3+ reports (Fam 19h: Milan, Genoa; Fam 1Ah: Turin).
Product ProductFromCpuid(uint8_t family, uint8_t model);

// Which key signed the report: bits 4:2 of the byte at 0x48.
enum class SigningKey : uint8_t { kVcek = 0, kVlek = 1, kNone = 7 };
absl::string_view SigningKeyName(SigningKey k);

// TCB_VERSION. Milan/Genoa: [bl, tee, 0, 0, 0, 0, snp, ucode]; Turin adds FMC:
// [fmc, bl, tee, snp, 0, 0, 0, ucode].
struct TcbVersion {
  uint8_t bl = 0;
  uint8_t tee = 0;
  uint8_t snp = 0;
  uint8_t ucode = 0;
  std::optional<uint8_t> fmc;  // Turin only

  bool operator==(const TcbVersion&) const = default;
};
// Decodes a raw TCB_VERSION for the product's layout; reserved bytes must be zero.
absl::StatusOr<TcbVersion> DecodeTcb(uint64_t raw, Product product);
uint64_t EncodeTcb(const TcbVersion& tcb, Product product);
// "bl=3 tee=0 snp=8 ucode=115" (plus " fmc=N" on Turin).
std::string TcbToString(const TcbVersion& tcb);
// Parses "BL,TEE,SNP,UCODE[,FMC]".
absl::StatusOr<TcbVersion> ParseTcbList(absl::string_view text);
// Names the first component of `tcb` lower than `min` ("snp 7 < 8"), or "" if none is.
std::string FirstTcbComponentBelow(const TcbVersion& tcb, const TcbVersion& min);

// GUEST_POLICY (ABI spec, "Guest Policy Structure").
struct GuestPolicy {
  uint64_t raw = 0;
  uint8_t abi_minor = 0;
  uint8_t abi_major = 0;
  bool smt = false;            // bit 16: SMT allowed
  bool migrate_ma = false;     // bit 18: migration agent allowed
  bool debug = false;          // bit 19: debugging allowed
  bool single_socket = false;  // bit 20: single socket only
};
GuestPolicy DecodeGuestPolicy(uint64_t raw);

// PLATFORM_INFO bits.
struct PlatformInfo {
  uint64_t raw = 0;
  bool smt_enabled = false;   // bit 0
  bool tsme_enabled = false;  // bit 1
};

struct FirmwareVersion {
  uint8_t major = 0;
  uint8_t minor = 0;
  uint8_t build = 0;
};

struct Report {
  uint32_t version = 0;
  uint32_t guest_svn = 0;
  GuestPolicy policy;
  std::array<uint8_t, 16> family_id{};
  std::array<uint8_t, 16> image_id{};
  uint32_t vmpl = 0;
  uint32_t signature_algo = 0;
  uint64_t current_tcb = 0;
  PlatformInfo platform_info;
  bool author_key_en = false;
  bool mask_chip_key = false;
  SigningKey signing_key = SigningKey::kVcek;
  std::array<uint8_t, 64> report_data{};
  std::array<uint8_t, 48> measurement{};
  std::array<uint8_t, 32> host_data{};
  std::array<uint8_t, 48> id_key_digest{};
  std::array<uint8_t, 48> author_key_digest{};
  std::array<uint8_t, 32> report_id{};
  std::array<uint8_t, 32> report_id_ma{};
  uint64_t reported_tcb = 0;
  // CPUID family/model/stepping: version 3 and later.
  std::optional<uint8_t> cpuid_family;
  std::optional<uint8_t> cpuid_model;
  std::optional<uint8_t> cpuid_stepping;
  std::array<uint8_t, 64> chip_id{};
  uint64_t committed_tcb = 0;
  FirmwareVersion current_fw;
  FirmwareVersion committed_fw;
  uint64_t launch_tcb = 0;
  // Mitigation vectors: version 5 and later.
  std::optional<uint64_t> launch_mit_vector;
  std::optional<uint64_t> current_mit_vector;
  // Signature: R and S as 72-byte little-endian integers (P-384 uses the low 48 bytes).
  std::array<uint8_t, kSignatureComponentSize> signature_r{};
  std::array<uint8_t, kSignatureComponentSize> signature_s{};
  // The exact signed bytes [0, 0x2A0), as received.
  std::array<uint8_t, kSignedRegionSize> signed_region{};

  // The product named by CPUID (v3+), else kUnknown.
  Product cpuid_product() const;
};

// Parses a report: exactly kReportSize bytes, version 2, 3 or 5, signature algorithm 1,
// every must-be-zero field zero. Cheap and bounded; does no cryptography.
absl::StatusOr<Report> ParseReport(std::span<const uint8_t> bytes);

}  // namespace attest::snp

#endif  // ATTEST_SNP_REPORT_H_
