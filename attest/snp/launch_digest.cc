#include "attest/snp/launch_digest.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "attest/byte_reader.h"
#include "attest/status.h"
#include "attest/tpm/hash_alg.h"
#include "tpm/md_internal.h"

namespace attest::snp {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t k4GiB = 1ull << 32;
constexpr uint64_t kMaxFirmware = 64ull << 20;
constexpr size_t kMaxTableEntries = 64;
constexpr size_t kMaxSections = 64;
constexpr uint32_t kMaxVcpus = 1024;
constexpr uint64_t kVmsaGpa = 0xFFFFFFFFF000ull;

// Page types of SNP_LAUNCH_UPDATE (PAGE_INFO.PAGE_TYPE).
enum PageType : uint8_t {
  kNormal = 1,
  kVmsa = 2,
  kZero = 3,
  kUnmeasured = 4,
  kSecrets = 5,
  kCpuid = 6,
};

// SEV metadata section types (OvmfSevMetadata.asm).
enum SectionType : uint32_t {
  kSecMem = 1,
  kSecretsSection = 2,
  kCpuidSection = 3,
  kSvsmCaa = 4,
  kKernelHashes = 0x10,
};

using Guid = std::array<uint8_t, 16>;

// An EFI GUID's bytes (first three fields little-endian) from its text form.
Guid GuidOf(absl::string_view text) {
  Guid raw{};
  size_t n = 0;
  for (size_t i = 0; i + 1 < text.size() && n < 16; ++i) {
    if (text[i] == '-') continue;
    auto nib = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
    raw[n++] = static_cast<uint8_t>(nib(text[i]) << 4 | nib(text[i + 1]));
    ++i;
  }
  Guid g = raw;
  std::reverse(g.begin(), g.begin() + 4);
  std::reverse(g.begin() + 4, g.begin() + 6);
  std::reverse(g.begin() + 6, g.begin() + 8);
  return g;
}

const Guid kTableFooter = GuidOf("96b582de-1fb2-45f7-baea-a366c55a082d");
const Guid kSevEsResetBlock = GuidOf("00f771de-1a7e-4fcb-890e-68c77e2fb44e");
const Guid kSevHashesTable = GuidOf("7255371f-3a3b-4b04-927b-1da6efa8d454");
const Guid kSevSecretBlock = GuidOf("4c2eb361-7d9b-4cc3-8081-127c90d3d294");
const Guid kSevMetadata = GuidOf("dc886566-984a-4798-a75e-5585a7bf67cc");
const Guid kSvsmInfo = GuidOf("a789a612-0597-4c4b-a49f-cbb1fe9d1ddd");
const Guid kHashesHeader = GuidOf("9438d606-4f22-4cc9-b479-a793d411fd21");
const Guid kHashCmdline = GuidOf("97d02dd8-bd20-4c94-aa78-e7714d36ab2a");
const Guid kHashInitrd = GuidOf("44baf731-3a2f-4bd7-9af1-41e29169781d");
const Guid kHashKernel = GuidOf("4de79437-abd2-427f-b835-d5b172d2045b");

absl::Status Bad(absl::string_view what, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(what, ": ", why));
}

uint32_t U32At(std::span<const uint8_t> d, size_t off) {
  uint32_t v = 0;
  std::memcpy(&v, d.data() + off, 4);
  return v;  // little-endian host (x86-64), as the formats
}

// SHA-384 fetched once (libattest's TpmAlgMd): OpenSSL 3 would otherwise look the
// implementation up again for every page.
const EVP_MD* Sha384Md() { return tpm::TpmAlgMd(tpm::kAlgSha384); }

// SHA-384 running digest of SNP_LAUNCH_UPDATE page infos.
class SnpDigest {
 public:
  explicit SnpDigest(std::optional<std::array<uint8_t, 48>> start) {
    if (start) digest_ = *start;
  }
  void Page(uint8_t type, uint64_t gpa, const std::array<uint8_t, 48>& contents) {
    uint8_t info[0x70] = {};
    std::memcpy(info, digest_.data(), 48);
    std::memcpy(info + 0x30, contents.data(), 48);
    const uint16_t len = 0x70;
    std::memcpy(info + 0x60, &len, 2);
    info[0x62] = type;  // IMI_PAGE and the VMPL permissions stay 0
    std::memcpy(info + 0x68, &gpa, 8);
    unsigned int n = 48;
    EVP_Digest(info, sizeof(info), digest_.data(), &n, Sha384Md(), nullptr);
  }
  // A range of pages of one type; NORMAL pages are hashed from `data`, the others have zero
  // contents.
  void Range(uint8_t type, uint64_t gpa, uint64_t size, std::span<const uint8_t> data = {}) {
    for (uint64_t off = 0; off < size; off += kPage) {
      std::array<uint8_t, 48> contents{};
      if (type == kNormal || type == kVmsa) {
        unsigned int n = 48;
        EVP_Digest(data.data() + off, kPage, contents.data(), &n, Sha384Md(), nullptr);
      }
      Page(type, type == kVmsa ? kVmsaGpa : gpa + off, contents);
    }
  }
  const std::array<uint8_t, 48>& value() const { return digest_; }

 private:
  std::array<uint8_t, 48> digest_{};
};

// ---- VMSA (AMD APM vol. 2, SEV-ES save area) -------------------------------------------------

struct Segment {
  uint16_t selector, attrib;
  uint32_t limit;
  uint64_t base;
};

class Vmsa {
 public:
  Vmsa() : page_(kPage, 0) {}
  void Seg(size_t off, Segment s) {
    Put(off, s.selector);
    Put(off + 2, s.attrib);
    Put(off + 4, s.limit);
    Put(off + 8, s.base);
  }
  template <typename T>
  void Put(size_t off, T v) {
    std::memcpy(page_.data() + off, &v, sizeof(T));
  }
  std::span<const uint8_t> bytes() const { return page_; }

 private:
  std::vector<uint8_t> page_;
};

// The VMSA of a vCPU starting at `eip` (OVMF's reset vector or its AP reset block).
Vmsa OvmfVmsa(Vmm vmm, uint32_t eip, uint64_t sev_features, uint64_t rdx) {
  uint16_t cs_attr = 0x9B, ss_attr = 0x93, tr_attr = 0x8B;
  uint32_t mxcsr = 0x1F80;
  uint16_t fcw = 0x37F;
  uint64_t g_pat = 0x0007040600070406ull;
  if (vmm == Vmm::kEc2) {
    cs_attr = eip == 0xFFFFFFF0u ? 0x9A : 0x9B;
    ss_attr = 0x92;
    tr_attr = 0x83;
    mxcsr = 0;
    fcw = 0;
  } else if (vmm == Vmm::kGce) {
    mxcsr = 0;
    fcw = 0;
    g_pat = 0x00070106ull;
  }
  Vmsa v;
  const Segment data{0, 0x93, 0xFFFF, 0};
  v.Seg(0x00, data);                                          // es
  v.Seg(0x10, {0xF000, cs_attr, 0xFFFF, eip & 0xFFFF0000u});  // cs
  v.Seg(0x20, {0, ss_attr, 0xFFFF, 0});                       // ss
  v.Seg(0x30, data);                                          // ds
  v.Seg(0x40, data);                                          // fs
  v.Seg(0x50, data);                                          // gs
  v.Seg(0x60, {0, 0, 0xFFFF, 0});                             // gdtr
  v.Seg(0x70, {0, 0x82, 0xFFFF, 0});                          // ldtr
  v.Seg(0x80, {0, 0, 0xFFFF, 0});                             // idtr
  v.Seg(0x90, {0, tr_attr, 0xFFFF, 0});                       // tr
  v.Put<uint64_t>(0xD0, 0x1000);                              // efer
  v.Put<uint64_t>(0x148, 0x40);                               // cr4
  v.Put<uint64_t>(0x158, 0x10);                               // cr0
  v.Put<uint64_t>(0x160, 0x400);                              // dr7
  v.Put<uint64_t>(0x168, 0xFFFF0FF0);                         // dr6
  v.Put<uint64_t>(0x170, 0x2);                                // rflags
  v.Put<uint64_t>(0x178, eip & 0xFFFFu);                      // rip
  v.Put<uint64_t>(0x268, g_pat);                              // g_pat
  v.Put<uint64_t>(0x310, rdx);                                // rdx
  v.Put<uint64_t>(0x3B0, sev_features);                       // sev_features
  v.Put<uint64_t>(0x3E8, 0x1);                                // xcr0
  v.Put<uint32_t>(0x408, mxcsr);                              // mxcsr
  v.Put<uint16_t>(0x410, fcw);                                // x87_fcw
  return v;
}

// The VMSA every vCPU of an SVSM guest starts with (64-bit, at the SVSM's entry).
Vmsa SvsmVmsa(uint64_t rip, uint64_t rdx) {
  Vmsa v;
  const Segment data{16, 0xC93, 0xFFFFFFFF, 0};
  v.Seg(0x00, data);                              // es
  v.Seg(0x10, {8, 0xC9B, 0xFFFFFFFF, 0});         // cs
  v.Seg(0x20, data);                              // ss
  v.Seg(0x30, data);                              // ds
  v.Seg(0x40, data);                              // fs
  v.Seg(0x50, {0, 0x93, 0xFFFF, 0});              // gs
  v.Seg(0x60, {0, 0, 0xFFFF, 0});                 // gdtr
  v.Seg(0x70, {0, 0x82, 0xFFFF, 0});              // ldtr
  v.Seg(0x80, {0, 0, 0xFFFF, 0});                 // idtr
  v.Seg(0x90, {0, 0x8B, 0xFFFF, 0});              // tr
  v.Put<uint64_t>(0xD0, 0x1000);                  // efer
  v.Put<uint64_t>(0x148, 0x40);                   // cr4
  v.Put<uint64_t>(0x158, 0x11);                   // cr0 (protection enabled)
  v.Put<uint64_t>(0x160, 0x400);                  // dr7
  v.Put<uint64_t>(0x168, 0xFFFF0FF0);             // dr6
  v.Put<uint64_t>(0x170, 0x2);                    // rflags
  v.Put<uint64_t>(0x178, rip);                    // rip
  v.Put<uint64_t>(0x268, 0x0007040600070406ull);  // g_pat
  v.Put<uint64_t>(0x310, rdx);                    // rdx
  v.Put<uint64_t>(0x3B0, 0x1);                    // sev_features: SNPActive only
  v.Put<uint64_t>(0x3E8, 0x1);                    // xcr0
  v.Put<uint32_t>(0x408, 0x1F80);                 // mxcsr (x87_fcw stays 0)
  return v;
}

// ---- measurement of one firmware's metadata sections -----------------------------------------

absl::Status MeasureSections(SnpDigest& d, const FirmwareInfo& fw, Vmm vmm,
                             const std::optional<KernelHashes>& kernel, absl::string_view what) {
  std::vector<const FirmwareSection*> cpuid_later;
  for (const auto& s : fw.sections) {
    switch (s.type) {
      case kSecMem:
        d.Range(vmm == Vmm::kGce ? kUnmeasured : kZero, s.gpa, s.size);
        break;
      case kSecretsSection:
        d.Range(kSecrets, s.gpa, s.size);
        break;
      case kCpuidSection:
        if (vmm == Vmm::kEc2) {
          cpuid_later.push_back(&s);
        } else {
          d.Range(kCpuid, s.gpa, s.size);
        }
        break;
      case kSvsmCaa:
        d.Range(kZero, s.gpa, s.size);
        break;
      case kKernelHashes:
        if (kernel) {
          if (!fw.hashes_table_gpa || s.size != kPage ||
              (*fw.hashes_table_gpa & ~(kPage - 1)) != s.gpa ||
              (*fw.hashes_table_gpa & (kPage - 1)) + 176 > kPage) {
            return Bad(what, "the SEV hashes table does not lie inside the KERNEL_HASHES page");
          }
          std::vector<uint8_t> page(kPage, 0);
          const auto table = SevHashesTable(*kernel);
          std::memcpy(page.data() + (*fw.hashes_table_gpa & (kPage - 1)), table.data(),
                      table.size());
          d.Range(kNormal, s.gpa, kPage, page);
        } else {
          d.Range(kZero, s.gpa, s.size);
        }
        break;
      default:
        return Bad(what, absl::StrFormat("SEV metadata section type 0x%x is unknown", s.type));
    }
  }
  for (const auto* s : cpuid_later) d.Range(kCpuid, s->gpa, s->size);
  return absl::OkStatus();
}

std::vector<uint8_t> Sha256Of(std::initializer_list<std::span<const uint8_t>> parts) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), tpm::TpmAlgMd(tpm::kAlgSha256), nullptr);
  for (auto p : parts) EVP_DigestUpdate(ctx.get(), p.data(), p.size());
  std::vector<uint8_t> out(32);
  unsigned int n = 32;
  EVP_DigestFinal_ex(ctx.get(), out.data(), &n);
  return out;
}

}  // namespace

// ---- names ---------------------------------------------------------------------------------

absl::StatusOr<LaunchMode> ParseLaunchMode(absl::string_view name) {
  const std::string n = absl::AsciiStrToLower(name);
  if (n == "snp" || n == "sev-snp") return LaunchMode::kSnp;
  if (n == "snp:ovmf-hash" || n == "sev-snp:ovmf-hash") return LaunchMode::kSnpOvmfHash;
  if (n == "snp:svsm" || n == "sev-snp:svsm") return LaunchMode::kSnpSvsm;
  if (n == "sev") return LaunchMode::kSev;
  if (n == "seves" || n == "sev-es") return LaunchMode::kSevEs;
  return Bad("--mode",
             absl::StrCat("\"", name, "\" is not one of snp, snp:ovmf-hash, snp:svsm, sev, seves"));
}

std::string LaunchModeName(LaunchMode mode) {
  switch (mode) {
    case LaunchMode::kSnp:
      return "snp";
    case LaunchMode::kSnpOvmfHash:
      return "snp:ovmf-hash";
    case LaunchMode::kSnpSvsm:
      return "snp:svsm";
    case LaunchMode::kSev:
      return "sev";
    case LaunchMode::kSevEs:
      return "seves";
  }
  return "?";
}

absl::StatusOr<Vmm> ParseVmm(absl::string_view name) {
  const std::string n = absl::AsciiStrToLower(name);
  if (n == "qemu") return Vmm::kQemu;
  if (n == "ec2") return Vmm::kEc2;
  if (n == "gce") return Vmm::kGce;
  return Bad("--vmm", absl::StrCat("\"", name, "\" is not one of qemu, ec2, gce"));
}

std::string VmmName(Vmm vmm) {
  return vmm == Vmm::kQemu ? "qemu" : vmm == Vmm::kEc2 ? "ec2" : "gce";
}

uint32_t VcpuSignature(uint32_t family, uint32_t model, uint32_t stepping) {
  uint32_t base = family, ext = 0;
  if (family > 0xF) {
    base = 0xF;
    ext = family - 0xF;
  }
  return (ext & 0xFF) << 20 | ((model >> 4) & 0xF) << 16 | (base & 0xF) << 8 | (model & 0xF) << 4 |
         (stepping & 0xF);
}

absl::StatusOr<uint32_t> VcpuSignatureOfType(absl::string_view type) {
  struct Known {
    const char* name;
    uint32_t family, model, stepping;
  };
  // Family/model/stepping of QEMU's CPU models (target/i386/cpu.c).
  static constexpr Known kKnown[] = {
      {"epyc", 23, 1, 2},          {"epyc-v1", 23, 1, 2},        {"epyc-v2", 23, 1, 2},
      {"epyc-v3", 23, 1, 2},       {"epyc-v4", 23, 1, 2},        {"epyc-ibpb", 23, 1, 2},
      {"epyc-rome", 23, 49, 0},    {"epyc-rome-v1", 23, 49, 0},  {"epyc-rome-v2", 23, 49, 0},
      {"epyc-rome-v3", 23, 49, 0}, {"epyc-rome-v4", 23, 49, 0},  {"epyc-milan", 25, 1, 1},
      {"epyc-milan-v1", 25, 1, 1}, {"epyc-milan-v2", 25, 1, 1},  {"epyc-milan-v3", 25, 1, 1},
      {"epyc-genoa", 25, 17, 0},   {"epyc-genoa-v1", 25, 17, 0}, {"epyc-turin", 26, 0, 0},
      {"epyc-turin-v1", 26, 0, 0},
  };
  const std::string n = absl::AsciiStrToLower(type);
  for (const auto& k : kKnown) {
    if (n == k.name) return VcpuSignature(k.family, k.model, k.stepping);
  }
  return Bad("--vcpu-type", absl::StrCat("\"", type, "\" is not a known CPU model"));
}

// ---- firmware ------------------------------------------------------------------------------

bool FirmwareInfo::has_kernel_hashes_section() const {
  return std::any_of(sections.begin(), sections.end(),
                     [](const FirmwareSection& s) { return s.type == kKernelHashes; });
}

absl::StatusOr<FirmwareInfo> ParseFirmware(std::span<const uint8_t> image, uint64_t end_gpa,
                                           absl::string_view what) {
  if (image.empty() || image.size() % kPage != 0 || image.size() > kMaxFirmware) {
    return Bad(what, absl::StrCat(image.size(), " bytes: a firmware image is a whole number of ",
                                  "4 KiB pages, at most 64 MiB"));
  }
  if (end_gpa < image.size() || end_gpa > k4GiB) return Bad(what, "does not fit below 4 GiB");
  FirmwareInfo fw;
  fw.size = image.size();
  fw.gpa = end_gpa - image.size();

  // Footer entry of the GUID table: u16 table size || GUID, 32 + 18 bytes before the end.
  const size_t footer = image.size() - 32 - 18;
  if (!std::equal(kTableFooter.begin(), kTableFooter.end(), image.begin() + footer + 2)) {
    return Bad(what, "no OVMF footer GUID table (96b582de-…) 50 bytes before the end");
  }
  uint16_t table_size = 0;
  std::memcpy(&table_size, image.data() + footer, 2);
  if (table_size < 18 || table_size > footer + 18) {
    return Bad(what, absl::StrCat("footer GUID table size ", table_size, " is out of range"));
  }
  const size_t start = footer + 18 - table_size;
  size_t end = footer;
  std::optional<uint32_t> metadata_offset;
  for (size_t entries = 0; end > start; ++entries) {
    if (entries == kMaxTableEntries) return Bad(what, "footer GUID table has too many entries");
    if (end - start < 18) return Bad(what, "footer GUID table entry truncated");
    Guid guid;
    std::memcpy(guid.data(), image.data() + end - 16, 16);
    uint16_t len = 0;
    std::memcpy(&len, image.data() + end - 18, 2);
    if (len < 18 || len > end - start) {
      return Bad(what, absl::StrCat("footer GUID table entry of size ", len, " at offset ",
                                    end - 18, " is out of range"));
    }
    const std::span<const uint8_t> data = image.subspan(end - len, len - 18);
    auto u32 = [&](size_t off) -> absl::StatusOr<uint32_t> {
      if (data.size() < off + 4) return Bad(what, "footer GUID table entry too short");
      return U32At(data, off);
    };
    if (guid == kSevEsResetBlock) {
      ASSIGN_OR_RETURN(fw.sev_es_reset_eip, u32(0));
    } else if (guid == kSevHashesTable) {
      ASSIGN_OR_RETURN(uint32_t gpa, u32(0));
      ASSIGN_OR_RETURN(uint32_t size, u32(4));
      if (gpa != 0 && size != 0) {
        fw.hashes_table_gpa = gpa;
        fw.hashes_table_size = size;
      }
    } else if (guid == kSevMetadata) {
      ASSIGN_OR_RETURN(metadata_offset, u32(0));
    } else if (guid == kSvsmInfo) {
      ASSIGN_OR_RETURN(fw.svsm_entry_offset, u32(0));
    }  // other entries (secret block, TDX metadata, …) do not change the SEV digest
    end -= len;
  }

  if (metadata_offset) {
    if (*metadata_offset < 16 || *metadata_offset > image.size()) {
      return Bad(what, absl::StrCat("SEV metadata offset 0x", absl::Hex(*metadata_offset),
                                    " is outside the image"));
    }
    ByteReader r(image.subspan(image.size() - *metadata_offset), "SEV metadata");
    ASSIGN_OR_RETURN(auto sig, r.ReadArray<4>());
    if (std::memcmp(sig.data(), "ASEV", 4) != 0) return Bad(what, "SEV metadata without \"ASEV\"");
    ASSIGN_OR_RETURN(uint32_t size, r.ReadU32Le());
    ASSIGN_OR_RETURN(uint32_t version, r.ReadU32Le());
    ASSIGN_OR_RETURN(uint32_t count, r.ReadU32Le());
    if (version != 1) return Bad(what, absl::StrCat("SEV metadata version ", version));
    if (count > kMaxSections || size != 16 + 12 * count) {
      return Bad(what, absl::StrCat("SEV metadata of ", count, " sections in ", size, " bytes"));
    }
    for (uint32_t i = 0; i < count; ++i) {
      FirmwareSection s;
      ASSIGN_OR_RETURN(s.gpa, r.ReadU32Le());
      ASSIGN_OR_RETURN(s.size, r.ReadU32Le());
      ASSIGN_OR_RETURN(s.type, r.ReadU32Le());
      if (s.gpa % kPage != 0 || s.size == 0 || s.size % kPage != 0 ||
          uint64_t{s.gpa} + s.size > k4GiB) {
        return Bad(what, absl::StrFormat("SEV metadata section %u (gpa 0x%x, size 0x%x) is not a "
                                         "page-aligned range below 4 GiB",
                                         i, s.gpa, s.size));
      }
      fw.sections.push_back(s);
    }
  }
  return fw;
}

// ---- hashes table --------------------------------------------------------------------------

KernelHashes HashesOf(std::span<const uint8_t> kernel,
                      std::optional<std::span<const uint8_t>> initrd,
                      std::optional<absl::string_view> append) {
  KernelHashes h;
  auto copy = [](std::array<uint8_t, 32>& dst, const std::vector<uint8_t>& src) {
    std::copy(src.begin(), src.end(), dst.begin());
  };
  copy(h.kernel, Sha256Of({kernel}));
  copy(h.initrd, Sha256Of({initrd.value_or(std::span<const uint8_t>())}));
  const std::string cmdline = std::string(append.value_or("")) + std::string(1, '\0');
  copy(h.cmdline, Sha256Of({std::span<const uint8_t>(
                      reinterpret_cast<const uint8_t*>(cmdline.data()), cmdline.size())}));
  return h;
}

std::vector<uint8_t> SevHashesTable(const KernelHashes& hashes) {
  std::vector<uint8_t> t;
  auto guid = [&](const Guid& g) { t.insert(t.end(), g.begin(), g.end()); };
  auto u16 = [&](uint16_t v) {
    t.push_back(static_cast<uint8_t>(v));
    t.push_back(static_cast<uint8_t>(v >> 8));
  };
  guid(kHashesHeader);
  u16(168);
  for (const auto& [g, h] :
       {std::pair{kHashCmdline, hashes.cmdline}, std::pair{kHashInitrd, hashes.initrd},
        std::pair{kHashKernel, hashes.kernel}}) {
    guid(g);
    u16(50);
    t.insert(t.end(), h.begin(), h.end());
  }
  t.resize(176, 0);  // padded to a multiple of 16
  return t;
}

// ---- the digest ----------------------------------------------------------------------------

absl::StatusOr<std::vector<uint8_t>> LaunchDigest(const LaunchInputs& in) {
  if (in.vcpus == 0 || in.vcpus > kMaxVcpus) {
    return Bad("--vcpus", absl::StrCat(in.vcpus, " is not between 1 and ", kMaxVcpus));
  }
  ASSIGN_OR_RETURN(FirmwareInfo ovmf, ParseFirmware(in.ovmf, k4GiB, "OVMF"));
  const bool snp = in.mode == LaunchMode::kSnp || in.mode == LaunchMode::kSnpOvmfHash ||
                   in.mode == LaunchMode::kSnpSvsm;
  if (in.ovmf_hash && in.mode != LaunchMode::kSnp) {
    return Bad("OVMF hash", "a precomputed OVMF hash only works with the snp mode");
  }
  if (in.mode == LaunchMode::kSnpSvsm && in.vmm != Vmm::kQemu) {
    return Bad("--vmm", "snp:svsm is defined for QEMU only");
  }
  // Checked where the VMSAs are built, after the inputs they depend on.
  auto need_signature = [&]() -> absl::Status {
    if (in.vmm != Vmm::kQemu || in.vcpu_signature) return absl::OkStatus();
    return Bad("vCPU signature",
               "QEMU puts it into every VMSA: give --vcpu-type, --vcpu-sig or "
               "--vcpu-family/--vcpu-model/--vcpu-stepping");
  };
  const uint64_t rdx = in.vmm == Vmm::kQemu ? in.vcpu_signature.value_or(0) : 0x600;

  if (!snp) {  // SEV and SEV-ES: SHA-256 over the firmware, the hashes table and the VMSAs.
    if (in.kernel && !ovmf.hashes_table_gpa) {
      return Bad("--kernel",
                 "Kernel specified but OVMF doesn't support kernel/initrd/cmdline measurement");
    }
    std::vector<uint8_t> table;
    if (in.kernel) table = SevHashesTable(*in.kernel);
    if (in.mode == LaunchMode::kSev) return Sha256Of({in.ovmf, table});
    if (!ovmf.sev_es_reset_eip) return Bad("OVMF", "no SEV-ES reset block for the APs");
    RETURN_IF_ERROR(need_signature());
    std::vector<uint8_t> vmsas;
    for (uint32_t i = 0; i < in.vcpus; ++i) {
      const uint32_t eip = i == 0 ? 0xFFFFFFF0u : *ovmf.sev_es_reset_eip;
      const Vmsa v = OvmfVmsa(in.vmm, eip, /*sev_features=*/0, rdx);
      vmsas.insert(vmsas.end(), v.bytes().begin(), v.bytes().end());
    }
    return Sha256Of({in.ovmf, table, vmsas});
  }

  SnpDigest d(in.mode == LaunchMode::kSnp ? in.ovmf_hash : std::nullopt);
  if (!(in.mode == LaunchMode::kSnp && in.ovmf_hash))
    d.Range(kNormal, ovmf.gpa, ovmf.size, in.ovmf);
  if (in.mode == LaunchMode::kSnpOvmfHash) {
    return std::vector<uint8_t>(d.value().begin(), d.value().end());
  }

  if (in.mode == LaunchMode::kSnpSvsm) {
    if (in.kernel) return Bad("--kernel", "snp:svsm does not measure a kernel");
    if (in.vars_size % kPage != 0 || in.vars_size > ovmf.gpa) {
      return Bad("--vars-size", absl::StrCat(in.vars_size,
                                             " is not a whole number of pages "
                                             "below the OVMF"));
    }
    ASSIGN_OR_RETURN(FirmwareInfo svsm, ParseFirmware(in.svsm, ovmf.gpa - in.vars_size, "SVSM"));
    if (!svsm.svsm_entry_offset) return Bad("SVSM", "no SVSM info entry (a789a612-…)");
    RETURN_IF_ERROR(need_signature());
    d.Range(kNormal, svsm.gpa, svsm.size, in.svsm);
    RETURN_IF_ERROR(MeasureSections(d, svsm, Vmm::kQemu, std::nullopt, "SVSM"));
    const Vmsa v = SvsmVmsa(svsm.gpa + *svsm.svsm_entry_offset, rdx);
    for (uint32_t i = 0; i < in.vcpus; ++i) d.Range(kVmsa, 0, kPage, v.bytes());
    return std::vector<uint8_t>(d.value().begin(), d.value().end());
  }

  if (in.kernel && !ovmf.has_kernel_hashes_section()) {
    return Bad("--kernel",
               "Kernel specified but OVMF metadata doesn't include SNP_KERNEL_HASHES section");
  }
  if (ovmf.sections.empty()) return Bad("OVMF", "no SEV metadata: not an SEV-SNP capable OVMF");
  RETURN_IF_ERROR(MeasureSections(d, ovmf, in.vmm, in.kernel, "OVMF"));
  if (in.vcpus > 1 && !ovmf.sev_es_reset_eip) {
    return Bad("OVMF", "no SEV-ES reset block for the APs");
  }
  RETURN_IF_ERROR(need_signature());
  for (uint32_t i = 0; i < in.vcpus; ++i) {
    const uint32_t eip = i == 0 ? 0xFFFFFFF0u : *ovmf.sev_es_reset_eip;
    const Vmsa v = OvmfVmsa(in.vmm, eip, in.guest_features, rdx);
    d.Range(kVmsa, 0, kPage, v.bytes());
  }
  return std::vector<uint8_t>(d.value().begin(), d.value().end());
}

}  // namespace attest::snp
