#include "attest/snp/report.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "attest/byte_reader.h"
#include "attest/status.h"

namespace attest::snp {

absl::string_view ProductName(Product p) {
  switch (p) {
    case Product::kMilan:
      return "Milan";
    case Product::kGenoa:
      return "Genoa";
    case Product::kTurin:
      return "Turin";
    case Product::kUnknown:
      break;
  }
  return "unknown";
}

Product ProductFromName(absl::string_view name) {
  // AMD writes the product with an optional stepping suffix: "Milan-B0", "Genoa".
  absl::string_view base = name.substr(0, name.find('-'));
  if (base == "Milan") return Product::kMilan;
  if (base == "Genoa") return Product::kGenoa;
  if (base == "Turin") return Product::kTurin;
  return Product::kUnknown;
}

Product ProductFromCpuid(uint8_t family, uint8_t model) {
  if (family == 0x19) {
    if (model <= 0x0F) return Product::kMilan;
    if (model <= 0x1F || (model >= 0xA0 && model <= 0xAF)) return Product::kGenoa;
  }
  if (family == 0x1A && model <= 0x1F) return Product::kTurin;
  return Product::kUnknown;
}

absl::string_view SigningKeyName(SigningKey k) {
  switch (k) {
    case SigningKey::kVcek:
      return "vcek";
    case SigningKey::kVlek:
      return "vlek";
    case SigningKey::kNone:
      return "none";
  }
  return "?";
}

absl::StatusOr<TcbVersion> DecodeTcb(uint64_t raw, Product product) {
  auto byte = [raw](int i) { return static_cast<uint8_t>(raw >> (8 * i)); };
  TcbVersion tcb;
  if (product == Product::kTurin) {
    if ((raw & 0x00FFFFFF00000000ULL) != 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "TCB_VERSION 0x%016x: reserved bytes 4-6 must be zero (Turin layout)", raw));
    }
    tcb.fmc = byte(0);
    tcb.bl = byte(1);
    tcb.tee = byte(2);
    tcb.snp = byte(3);
    tcb.ucode = byte(7);
  } else {
    if ((raw & 0x0000FFFFFFFF0000ULL) != 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "TCB_VERSION 0x%016x: reserved bytes 2-5 must be zero (Milan/Genoa layout)", raw));
    }
    tcb.bl = byte(0);
    tcb.tee = byte(1);
    tcb.snp = byte(6);
    tcb.ucode = byte(7);
  }
  return tcb;
}

uint64_t EncodeTcb(const TcbVersion& tcb, Product product) {
  auto at = [](uint8_t v, int i) { return static_cast<uint64_t>(v) << (8 * i); };
  if (product == Product::kTurin) {
    return at(tcb.fmc.value_or(0), 0) | at(tcb.bl, 1) | at(tcb.tee, 2) | at(tcb.snp, 3) |
           at(tcb.ucode, 7);
  }
  return at(tcb.bl, 0) | at(tcb.tee, 1) | at(tcb.snp, 6) | at(tcb.ucode, 7);
}

std::string TcbToString(const TcbVersion& tcb) {
  std::string s =
      absl::StrFormat("bl=%d tee=%d snp=%d ucode=%d", tcb.bl, tcb.tee, tcb.snp, tcb.ucode);
  if (tcb.fmc) absl::StrAppendFormat(&s, " fmc=%d", *tcb.fmc);
  return s;
}

absl::StatusOr<TcbVersion> ParseTcbList(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, ',');
  if (parts.size() != 4 && parts.size() != 5) {
    return absl::InvalidArgumentError(
        absl::StrCat("TCB '", text, "': expected BL,TEE,SNP,UCODE[,FMC]"));
  }
  uint8_t v[5] = {};
  for (size_t i = 0; i < parts.size(); ++i) {
    uint32_t n = 0;
    if (!absl::SimpleAtoi(parts[i], &n) || n > 255) {
      return absl::InvalidArgumentError(
          absl::StrCat("TCB '", text, "': component '", parts[i], "' is not 0-255"));
    }
    v[i] = static_cast<uint8_t>(n);
  }
  TcbVersion tcb{v[0], v[1], v[2], v[3], std::nullopt};
  if (parts.size() == 5) tcb.fmc = v[4];
  return tcb;
}

std::string FirstTcbComponentBelow(const TcbVersion& tcb, const TcbVersion& min) {
  auto below = [](absl::string_view name, int have, int want) {
    return have < want ? absl::StrFormat("%s %d < %d", name, have, want) : std::string();
  };
  for (auto s : {below("bl", tcb.bl, min.bl), below("tee", tcb.tee, min.tee),
                 below("snp", tcb.snp, min.snp), below("ucode", tcb.ucode, min.ucode)}) {
    if (!s.empty()) return s;
  }
  if (min.fmc) return below("fmc", tcb.fmc.value_or(0), *min.fmc);
  return "";
}

GuestPolicy DecodeGuestPolicy(uint64_t raw) {
  GuestPolicy p;
  p.raw = raw;
  p.abi_minor = static_cast<uint8_t>(raw);
  p.abi_major = static_cast<uint8_t>(raw >> 8);
  p.smt = (raw >> 16) & 1;
  p.migrate_ma = (raw >> 18) & 1;
  p.debug = (raw >> 19) & 1;
  p.single_socket = (raw >> 20) & 1;
  return p;
}

Product Report::cpuid_product() const {
  if (!cpuid_family || !cpuid_model) return Product::kUnknown;
  return ProductFromCpuid(*cpuid_family, *cpuid_model);
}

namespace {

template <size_t N>
absl::Status ReadInto(ByteReader& r, std::array<uint8_t, N>& out) {
  ASSIGN_OR_RETURN(out, r.template ReadArray<N>());
  return absl::OkStatus();
}

absl::Status ReadFirmwareVersion(ByteReader& r, FirmwareVersion& fw, absl::string_view what) {
  ASSIGN_OR_RETURN(fw.build, r.ReadU8());
  ASSIGN_OR_RETURN(fw.minor, r.ReadU8());
  ASSIGN_OR_RETURN(fw.major, r.ReadU8());
  return r.ReadZeros(1, what);
}

}  // namespace

absl::StatusOr<Report> ParseReport(std::span<const uint8_t> bytes) {
  if (bytes.size() != kReportSize) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "snp report: %u bytes, an ATTESTATION_REPORT is exactly %u", bytes.size(), kReportSize));
  }
  ByteReader r(bytes, "snp report");
  Report rep;
  ASSIGN_OR_RETURN(rep.version, r.ReadU32Le());  // 0x000
  if (rep.version != 2 && rep.version != 3 && rep.version != 5) {
    return absl::InvalidArgumentError(
        absl::StrFormat("snp report: version %u is not supported (2, 3 or 5)", rep.version));
  }
  ASSIGN_OR_RETURN(rep.guest_svn, r.ReadU32Le());    // 0x004
  ASSIGN_OR_RETURN(uint64_t policy, r.ReadU64Le());  // 0x008
  rep.policy = DecodeGuestPolicy(policy);
  // Policy bit 17 is reserved and must be one: firmware refuses to launch a guest without it.
  if (((policy >> 17) & 1) == 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "snp report: guest policy 0x%x has reserved bit 17 clear (must be 1)", policy));
  }
  RETURN_IF_ERROR(ReadInto(r, rep.family_id));  // 0x010
  RETURN_IF_ERROR(ReadInto(r, rep.image_id));   // 0x020
  ASSIGN_OR_RETURN(rep.vmpl, r.ReadU32Le());    // 0x030
  if (rep.vmpl > 3) {
    return absl::InvalidArgumentError(
        absl::StrFormat("snp report: VMPL %u is out of range (0-3)", rep.vmpl));
  }
  ASSIGN_OR_RETURN(rep.signature_algo, r.ReadU32Le());  // 0x034
  if (rep.signature_algo != kSignatureAlgoEcdsaP384Sha384) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "snp report: signature algorithm %u is not supported (1 = ECDSA P-384 with SHA-384)",
        rep.signature_algo));
  }
  ASSIGN_OR_RETURN(rep.current_tcb, r.ReadU64Le());        // 0x038
  ASSIGN_OR_RETURN(rep.platform_info.raw, r.ReadU64Le());  // 0x040
  rep.platform_info.smt_enabled = rep.platform_info.raw & 1;
  rep.platform_info.tsme_enabled = (rep.platform_info.raw >> 1) & 1;
  ASSIGN_OR_RETURN(uint32_t key_info, r.ReadU32Le());  // 0x048
  if ((key_info >> 5) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "snp report: reserved bits 31:5 of the key field at 0x48 must be zero (0x%08x)", key_info));
  }
  rep.author_key_en = key_info & 1;
  rep.mask_chip_key = (key_info >> 1) & 1;
  uint32_t signing_key = (key_info >> 2) & 7;
  if (signing_key != 0 && signing_key != 1 && signing_key != 7) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "snp report: SIGNING_KEY %u is reserved (0 = VCEK, 1 = VLEK, 7 = none)", signing_key));
  }
  rep.signing_key = static_cast<SigningKey>(signing_key);
  RETURN_IF_ERROR(r.ReadZeros(4, "reserved field 0x04C"));  // 0x04C
  RETURN_IF_ERROR(ReadInto(r, rep.report_data));            // 0x050
  RETURN_IF_ERROR(ReadInto(r, rep.measurement));            // 0x090
  RETURN_IF_ERROR(ReadInto(r, rep.host_data));              // 0x0C0
  RETURN_IF_ERROR(ReadInto(r, rep.id_key_digest));          // 0x0E0
  RETURN_IF_ERROR(ReadInto(r, rep.author_key_digest));      // 0x110
  RETURN_IF_ERROR(ReadInto(r, rep.report_id));              // 0x140
  RETURN_IF_ERROR(ReadInto(r, rep.report_id_ma));           // 0x160
  ASSIGN_OR_RETURN(rep.reported_tcb, r.ReadU64Le());        // 0x180
  if (rep.version >= 3) {                                   // 0x188
    ASSIGN_OR_RETURN(rep.cpuid_family, r.ReadU8());
    ASSIGN_OR_RETURN(rep.cpuid_model, r.ReadU8());
    ASSIGN_OR_RETURN(rep.cpuid_stepping, r.ReadU8());
  } else {
    RETURN_IF_ERROR(r.ReadZeros(3, "reserved field 0x188 (CPUID is reported from version 3)"));
  }
  RETURN_IF_ERROR(r.ReadZeros(0x1A0 - 0x18B, "reserved field 0x18B"));
  RETURN_IF_ERROR(ReadInto(r, rep.chip_id));                                          // 0x1A0
  ASSIGN_OR_RETURN(rep.committed_tcb, r.ReadU64Le());                                 // 0x1E0
  RETURN_IF_ERROR(ReadFirmwareVersion(r, rep.current_fw, "reserved field 0x1EB"));    // 0x1E8
  RETURN_IF_ERROR(ReadFirmwareVersion(r, rep.committed_fw, "reserved field 0x1EF"));  // 0x1EC
  ASSIGN_OR_RETURN(rep.launch_tcb, r.ReadU64Le());                                    // 0x1F0
  if (rep.version >= 5) {                                                             // 0x1F8
    ASSIGN_OR_RETURN(rep.launch_mit_vector, r.ReadU64Le());
    ASSIGN_OR_RETURN(rep.current_mit_vector, r.ReadU64Le());
    RETURN_IF_ERROR(r.ReadZeros(kSignedRegionSize - 0x208, "reserved field 0x208"));
  } else {
    RETURN_IF_ERROR(r.ReadZeros(kSignedRegionSize - 0x1F8, "reserved field 0x1F8"));
  }
  // Signature (ABI spec, "ECDSA P-384 with SHA-384 Signature" table).
  RETURN_IF_ERROR(ReadInto(r, rep.signature_r));  // 0x2A0
  RETURN_IF_ERROR(ReadInto(r, rep.signature_s));  // 0x2E8
  RETURN_IF_ERROR(r.ReadZeros(kReportSize - 0x330, "reserved signature field 0x330"));
  RETURN_IF_ERROR(r.ExpectEnd());
  // P-384 scalars are 48 bytes: the high 24 bytes of each 72-byte component must be zero.
  for (size_t i = 48; i < kSignatureComponentSize; ++i) {
    if (rep.signature_r[i] != 0 || rep.signature_s[i] != 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "snp report: signature %s byte %u is nonzero (P-384 components are 48 bytes)",
          rep.signature_r[i] != 0 ? "R" : "S", i));
    }
  }
  std::copy_n(bytes.begin(), kSignedRegionSize, rep.signed_region.begin());
  return rep;
}

}  // namespace attest::snp
