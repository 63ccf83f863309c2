// The launch-digest precompute (issue 7 item 4) against every expected digest and expected error
// of ../shared/vectors/snp-measure/MANIFEST.md (fixtures read in place; the two xz-compressed
// SVSM fixtures decompressed into a temporary directory), plus the structure facts stated there.
#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <map>

#include "absl/strings/match.h"
#include "attest/encoding.h"
#include "attest/snp/launch_digest.h"
#include "test_support.h"

namespace attest::snp {
namespace {

namespace fs = std::filesystem;
using testing::ReadFileOrDie;

struct Fixtures {
  std::vector<uint8_t> amdsev, ovmfx64, svsm, svsm_ovmf;
};

// Reads the fixtures once per test binary (the SVSM ones are xz-compressed).
const Fixtures* LoadFixtures() {
  static const Fixtures* fixtures = []() -> const Fixtures* {
    auto vectors = testing::VectorsDir();
    if (!vectors || !fs::exists(*vectors / "snp-measure/fixtures")) return nullptr;
    const fs::path dir = *vectors / "snp-measure/fixtures";
    auto* f = new Fixtures;
    f->amdsev = ReadFileOrDie(dir / "ovmf_AmdSev_suffix.bin");
    f->ovmfx64 = ReadFileOrDie(dir / "ovmf_OvmfX64_suffix.bin");
    for (auto [name, out] :
         {std::pair{"svsm.bin.xz", &f->svsm}, std::pair{"svsm_ovmf.fd.xz", &f->svsm_ovmf}}) {
      const auto r = testing::RunProcess({"/usr/bin/xz", "-dc", (dir / name).string()});
      if (r.exit_code != 0) return nullptr;
      out->assign(r.out.begin(), r.out.end());
    }
    return f;
  }();
  return fixtures;
}

#define REQUIRE_FIXTURES(f)                                                                   \
  const Fixtures* f = LoadFixtures();                                                         \
  if (f == nullptr) {                                                                         \
    GTEST_SKIP() << "snp-measure vectors not found (../shared/vectors or $APPLIANCE_VECTORS)" \
                    " or xz missing";                                                         \
  }

const std::vector<uint8_t> kEmpty;

KernelHashes EmptyKernel(std::optional<std::string> append) {
  return HashesOf(kEmpty, std::span<const uint8_t>(kEmpty), append);
}

std::string Digest(const LaunchInputs& in) {
  auto d = LaunchDigest(in);
  return d.ok() ? HexEncode(*d) : "error: " + std::string(d.status().message());
}

const uint32_t kEpycV4 = 0x800F12;

std::vector<uint8_t> Sha256Bytes(std::span<const uint8_t> d) {
  std::vector<uint8_t> out(32);
  SHA256(d.data(), d.size(), out.data());
  return out;
}

TEST(SnpLaunchDigestTest, VcpuSignatures) {
  EXPECT_EQ(VcpuSignature(23, 1, 2), 0x800F12u);
  EXPECT_EQ(VcpuSignature(14, 1, 2), 0x0E12u);
  const std::map<std::string, uint32_t> want = {
      {"EPYC", 0x800F12},          {"EPYC-v4", 0x800F12},      {"EPYC-IBPB", 0x800F12},
      {"EPYC-Rome", 0x830F10},     {"EPYC-Rome-v3", 0x830F10}, {"EPYC-Milan", 0xA00F11},
      {"EPYC-Milan-v2", 0xA00F11}, {"EPYC-Genoa", 0xA10F10},   {"EPYC-Turin", 0xB00F00},
      {"epyc-milan", 0xA00F11}};
  for (const auto& [name, sig] : want) {
    auto got = VcpuSignatureOfType(name);
    ASSERT_TRUE(got.ok()) << name;
    EXPECT_EQ(*got, sig) << name;
  }
  EXPECT_FALSE(VcpuSignatureOfType("Skylake").ok());
}

TEST(SnpLaunchDigestTest, ModeNames) {
  for (const char* n : {"snp", "sev-snp", "SNP", "SEV-SNP"})
    EXPECT_EQ(*ParseLaunchMode(n), LaunchMode::kSnp) << n;
  for (const char* n : {"snp:svsm", "sev-snp:svsm", "SnP:sVsM"})
    EXPECT_EQ(*ParseLaunchMode(n), LaunchMode::kSnpSvsm) << n;
  for (const char* n : {"seves", "sev-es", "SEVES", "SEV-ES"})
    EXPECT_EQ(*ParseLaunchMode(n), LaunchMode::kSevEs) << n;
  EXPECT_EQ(*ParseLaunchMode("sev"), LaunchMode::kSev);
  EXPECT_EQ(*ParseLaunchMode("snp:ovmf-hash"), LaunchMode::kSnpOvmfHash);
  EXPECT_FALSE(ParseLaunchMode("foo").ok());
}

TEST(SnpLaunchDigestTest, HashesTableLayout) {
  const auto table = SevHashesTable(EmptyKernel(""));
  ASSERT_EQ(table.size(), 176u);
  EXPECT_EQ(HexEncode(std::span(table).first(10)), "06d63894224fc94cb479");
  EXPECT_EQ(HexEncode(Sha256Bytes(table)),
            "6e725681a17ae9f186635cbc1be742508b61e0e550918894f1a5363ac86b5a1a");
  const auto console = SevHashesTable(EmptyKernel("console=ttyS0 loglevel=7"));
  EXPECT_EQ(HexEncode(Sha256Bytes(console)),
            "9b8d003b7deacde5e1e4e53ffdeaeefcfeec67cdf0f7362fafe984996f03b59d");
  EXPECT_EQ(HexEncode(EmptyKernel(std::nullopt).cmdline),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
}

TEST(SnpLaunchDigestTest, FirmwareFacts) {
  REQUIRE_FIXTURES(f);
  auto amd = ParseFirmware(f->amdsev, 1ull << 32, "OVMF");
  ASSERT_TRUE(amd.ok()) << amd.status();
  EXPECT_EQ(amd->gpa, 0xFFFFF000u);
  EXPECT_EQ(amd->sev_es_reset_eip, 0x0080B004u);
  EXPECT_EQ(amd->hashes_table_gpa, 0x810C00u);
  EXPECT_EQ(amd->hashes_table_size, 0x400u);
  ASSERT_EQ(amd->sections.size(), 7u);
  EXPECT_EQ(amd->sections[5].gpa, 0x810000u);
  EXPECT_EQ(amd->sections[5].type, 0x10u);
  EXPECT_TRUE(amd->has_kernel_hashes_section());
  auto x64 = ParseFirmware(f->ovmfx64, 1ull << 32, "OVMF");
  ASSERT_TRUE(x64.ok()) << x64.status();
  EXPECT_FALSE(x64->hashes_table_gpa.has_value());
  EXPECT_EQ(x64->sections.size(), 6u);
  EXPECT_FALSE(x64->has_kernel_hashes_section());
  auto ovmf = ParseFirmware(f->svsm_ovmf, 1ull << 32, "OVMF");
  ASSERT_TRUE(ovmf.ok()) << ovmf.status();
  EXPECT_EQ(ovmf->gpa, 0xFFC84000u);
  auto svsm = ParseFirmware(f->svsm, ovmf->gpa - 0x84000, "SVSM");
  ASSERT_TRUE(svsm.ok()) << svsm.status();
  EXPECT_EQ(svsm->gpa, 0xFFAEA000u);
  EXPECT_EQ(svsm->svsm_entry_offset, 0u);
  EXPECT_EQ(svsm->sections.size(), 3u);
}

// One row of the MANIFEST's table.
struct Case {
  const char* id;
  LaunchMode mode;
  uint32_t vcpus;
  std::optional<uint32_t> sig;
  Vmm vmm;
  bool amdsev;                        // else OvmfX64 (or the SVSM OVMF for snp:svsm)
  int kernel;                         // 0: none; 1: empty kernel+initrd; 2: kernel only
  std::optional<std::string> append;  // with kernel == 1
  uint64_t features;
  const char* expected;  // hex, or "error: <text>"
};

TEST(SnpLaunchDigestTest, ManifestCases) {
  REQUIRE_FIXTURES(f);
  const std::string console = "console=ttyS0 loglevel=7";
  const Case cases[] = {
      {"S1", LaunchMode::kSnpOvmfHash, 1, std::nullopt, Vmm::kQemu, true, 0, std::nullopt, 1,
       "086e2e9149ebf45abdc3445fba5b2da8270bdbb04094d7a2c37faaa4b24af3aa16aff8c374c2a55c467a50da6d4"
       "66b74"},
      {"S2", LaunchMode::kSnp, 1, kEpycV4, Vmm::kQemu, true, 1, "", 0x21,
       "329c8ce0972ae52343b64d34a434a86f245dfd74f5ed7aae15d22efc78fb9683632b9b50e4e1d7fa41179ef98a7"
       "ef198"},
      {"S3", LaunchMode::kSnp, 1, kEpycV4, Vmm::kQemu, true, 1, "", 0x1,
       "ddc5224521617a536ee7ce9dd6224d1b58a8d4fda1c741f3ac99fc4bfa04ba6e9fc98646d4a07a9079397fa3852"
       "819b5"},
      {"S4", LaunchMode::kSnp, 1, kEpycV4, Vmm::kQemu, true, 1, console, 0x21,
       "803f691094946e42068aaa3a8f9e26a5c89f36f7b73ecfb28c653360fe4b3aba7e534442e7e1e17895dfe778d02"
       "28977"},
      {"S5", LaunchMode::kSnp, 1, kEpycV4, Vmm::kQemu, true, 1, console, 0x1,
       "6d287813eb5222d770f75005c664e34c204f385ce832cc2ce7d0d6f354454362f390ef83a92046c042e706363b4"
       "b08fa"},
      {"S6", LaunchMode::kSnp, 1, kEpycV4, Vmm::kEc2, true, 1, "", 0x21,
       "0ce9ccc06bab55eebe8abc234f3df6514883977a68a591b71052498ab52b2f1aa415db338033946ef93aa8278c0"
       "d67fb"},
      {"S7", LaunchMode::kSnp, 1, std::nullopt, Vmm::kGce, true, 1, "", 0x1,
       "5da7106cf14cf46b1725ebab123eb9e53bd46a1e9f400cd0c08e7827b04b688ea8b4e403c8404efed4397ea5d5d"
       "0722e"},
      {"S8", LaunchMode::kSnp, 4, std::nullopt, Vmm::kGce, true, 1, "", 0x1,
       "5c5debf100fc339f90276e761ee1f1658d08922c3b20e2a2e6c7a6c3370b2452a15a00eae11886a93d6fd1e7ab8"
       "1e29d"},
      {"S9", LaunchMode::kSnp, 1, kEpycV4, Vmm::kQemu, true, 0, std::nullopt, 0x21,
       "e1e1ca029dd7973ab9513295be68198472dcd4fc834bd9af9b63f6e8a1674dbf281a9278a4a2ebe0eed9f22adbc"
       "d0e2b"},
      {"S10", LaunchMode::kSnp, 1, kEpycV4, Vmm::kQemu, true, 0, std::nullopt, 0x1,
       "19358ba9a7615534a9a1e2f0dfc29384dcd4dcb7062ff9c6013b26869a5fc6ecabe033c48dd6f6db5d6d76e7c5d"
       "f632d"},
      {"S11", LaunchMode::kSnp, 4, kEpycV4, Vmm::kQemu, true, 1, "", 0x21,
       "4953b1fb416fa874980e8442b3706d345926d5f38879134e00813c5d7abcbe78eafe7b422907be0b4698e2414a6"
       "31942"},
      {"S12", LaunchMode::kSnp, 1, kEpycV4, Vmm::kQemu, false, 0, std::nullopt, 0x21,
       "28797ae0afaba4005a81e629acebfb59e6687949d6be44007cd5506823b0dd66f146aaae26ff291eed7b493d8a6"
       "4c385"},
      {"S13", LaunchMode::kSnp, 1, kEpycV4, Vmm::kQemu, false, 0, std::nullopt, 0x1,
       "da0296de8193586a5512078dcd719eccecbd87e2b825ad4148c44f665dc87df21e5b49e21523a9ad993afdb6a30"
       "b4005"},
      {"S14", LaunchMode::kSnp, 1, kEpycV4, Vmm::kQemu, false, 1, "", 0x21,
       "error: --kernel: Kernel specified but OVMF metadata doesn't include SNP_KERNEL_HASHES "
       "section"},
      {"S15", LaunchMode::kSnpSvsm, 4, kEpycV4, Vmm::kQemu, false, 0, std::nullopt, 0x21,
       "27d154c27b7b359c935e250ec6fee72aa0ae8c1225e3b0e1cf46a9567e938066d7d6f94bbdc4a857818bdb79277"
       "a44b2"},
      {"S16", LaunchMode::kSnpSvsm, 2, kEpycV4, Vmm::kQemu, false, 0, std::nullopt, 0x21,
       "9b94745036aafddf4f7f8b00c7513abb5b7703178cb95aaa57928bd963d68d3bfcb715d6019b9167ee2517b11b0"
       "d9be7"},
      {"E1", LaunchMode::kSevEs, 1, kEpycV4, Vmm::kQemu, true, 1, "", 0x1,
       "13810ae661ea11e2bb205621f582fee268f0367c8f97bc297b7fadef3e12002c"},
      {"E2", LaunchMode::kSevEs, 4, kEpycV4, Vmm::kQemu, true, 1, "", 0x21,
       "0dccbcaba8e90b261bd0d2e1863a2f9da714768b7b2a19363cd6ae35aa90de91"},
      {"E3", LaunchMode::kSevEs, 1, std::nullopt, Vmm::kQemu, false, 1, "", 0x21,
       "error: --kernel: Kernel specified but OVMF doesn't support kernel/initrd/cmdline "
       "measurement"},
      {"V1", LaunchMode::kSev, 1, std::nullopt, Vmm::kQemu, true, 1, console, 0,
       "82a3ee5d537c3620628270c292ae30cb40c3c878666a7890ee7ef2a08fb535ff"},
      {"V2", LaunchMode::kSev, 1, std::nullopt, Vmm::kQemu, true, 2, std::nullopt, 0,
       "77f613d7bbcdf12a73782ea9e88b0172aeda50d1a54201cb903594ff52846898"},
      {"V3", LaunchMode::kSev, 1, std::nullopt, Vmm::kQemu, false, 0, std::nullopt, 0,
       "b4c021e085fb83ceffe6571a3d357b4a98773c83c474e47f76c876708fe316da"},
      {"V4", LaunchMode::kSev, 1, std::nullopt, Vmm::kQemu, false, 1, "", 0,
       "error: --kernel: Kernel specified but OVMF doesn't support kernel/initrd/cmdline "
       "measurement"},
  };
  for (const Case& c : cases) {
    LaunchInputs in;
    in.mode = c.mode;
    const bool svsm = c.mode == LaunchMode::kSnpSvsm;
    in.ovmf = svsm ? f->svsm_ovmf : c.amdsev ? f->amdsev : f->ovmfx64;
    if (svsm) {
      in.svsm = f->svsm;
      in.vars_size = 540672;
    }
    if (c.kernel == 1) in.kernel = EmptyKernel(c.append);
    if (c.kernel == 2) in.kernel = HashesOf(kEmpty, std::nullopt, std::nullopt);
    in.vcpus = c.vcpus;
    in.vcpu_signature = c.sig;
    in.vmm = c.vmm;
    in.guest_features = c.features;
    EXPECT_EQ(Digest(in), c.expected) << c.id;
  }
}

// S2-S5: a precomputed OVMF digest (S1) gives the same result as hashing the firmware.
TEST(SnpLaunchDigestTest, PrecomputedOvmfHash) {
  REQUIRE_FIXTURES(f);
  LaunchInputs in;
  in.ovmf = f->amdsev;
  in.mode = LaunchMode::kSnpOvmfHash;
  auto ovmf_hash = LaunchDigest(in);
  ASSERT_TRUE(ovmf_hash.ok());
  in.mode = LaunchMode::kSnp;
  in.kernel = EmptyKernel("console=ttyS0 loglevel=7");
  in.vcpu_signature = kEpycV4;
  in.guest_features = 0x21;
  const std::string without = Digest(in);
  std::array<uint8_t, 48> h;
  std::copy(ovmf_hash->begin(), ovmf_hash->end(), h.begin());
  in.ovmf_hash = h;
  EXPECT_EQ(Digest(in), without);
  EXPECT_TRUE(absl::StartsWith(without, "803f6910"));
  in.mode = LaunchMode::kSevEs;
  EXPECT_EQ(Digest(in), "error: OVMF hash: a precomputed OVMF hash only works with the snp mode");
}

TEST(SnpLaunchDigestTest, BadInputsAreNamed) {
  REQUIRE_FIXTURES(f);
  LaunchInputs in;
  in.ovmf = f->amdsev;
  EXPECT_TRUE(absl::StrContains(Digest(in), "vCPU signature")) << Digest(in);  // QEMU needs it
  in.vcpu_signature = kEpycV4;
  in.vcpus = 0;
  EXPECT_TRUE(absl::StrContains(Digest(in), "--vcpus")) << Digest(in);
  in.vcpus = 1;
  std::vector<uint8_t> odd(f->amdsev.begin(), f->amdsev.end() - 1);
  in.ovmf = odd;
  EXPECT_TRUE(absl::StrContains(Digest(in), "whole number of")) << Digest(in);
  std::vector<uint8_t> zeros(4096, 0);
  in.ovmf = zeros;
  EXPECT_TRUE(absl::StrContains(Digest(in), "no OVMF footer GUID table")) << Digest(in);
  in.ovmf = f->svsm_ovmf;
  in.mode = LaunchMode::kSnpSvsm;
  in.svsm = f->svsm;
  in.vars_size = 4095;
  EXPECT_TRUE(absl::StrContains(Digest(in), "--vars-size")) << Digest(in);
}

// Every prefix and every single-byte change of the firmware is either measured or rejected with
// a named error: the parser never reads outside the image.
TEST(SnpLaunchDigestTest, TruncatedAndAlteredFirmware) {
  REQUIRE_FIXTURES(f);
  for (size_t n = 0; n <= f->amdsev.size(); n += 1) {
    auto r = ParseFirmware(std::span(f->amdsev).first(n), 1ull << 32, "OVMF");
    if (n != f->amdsev.size()) {
      EXPECT_FALSE(r.ok()) << n;  // never a whole number of pages
    }
  }
  std::vector<uint8_t> copy = f->amdsev;
  LaunchInputs in;
  in.ovmf = copy;
  in.vcpu_signature = kEpycV4;
  in.kernel = EmptyKernel("");
  const std::string base = Digest(in);
  size_t changed = 0, rejected = 0;
  for (size_t i = 0; i < copy.size(); ++i) {
    copy[i] ^= 0x01;
    const std::string d = Digest(in);
    if (absl::StartsWith(d, "error: ")) {
      ++rejected;
    } else {
      EXPECT_NE(d, base) << "byte " << i;  // every byte is measured
      ++changed;
    }
    copy[i] ^= 0x01;
  }
  EXPECT_EQ(changed + rejected, copy.size());
  std::printf("OVMF byte flips: %zu changed the digest, %zu rejected with a named error\n", changed,
              rejected);
}

}  // namespace
}  // namespace attest::snp
