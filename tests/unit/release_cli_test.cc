// `appliance-release snp-digest` (issue 7's stable contract) as a process: digests on stdout in
// lowercase hex, exit 2 with the bad input named on stderr and nothing on stdout.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using attest::testing::ProcessResult;
using attest::testing::RunProcess;

class ReleaseCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto vectors = attest::testing::VectorsDir();
    if (!vectors || !fs::exists(*vectors / "snp-measure/fixtures")) {
      GTEST_SKIP() << "snp-measure vectors not found (../shared/vectors or $APPLIANCE_VECTORS)";
    }
    fixtures_ = *vectors / "snp-measure/fixtures";
    attest::testing::WriteFileOrDie(dir_.path() / "empty", std::string());
  }
  ProcessResult Run(std::vector<std::string> args) {
    args.insert(args.begin(), {APPLIANCE_RELEASE_BIN, "snp-digest"});
    return RunProcess(args);
  }
  std::string Ovmf(const char* name) { return (fixtures_ / name).string(); }
  std::string Empty() { return (dir_.path() / "empty").string(); }

  attest::testing::ScopedTempDir dir_;
  fs::path fixtures_;
};

TEST_F(ReleaseCliTest, PrintsTheManifestDigests) {
  // S4: AmdSev suffix, QEMU, EPYC-v4, guest features 0x21, empty kernel and initrd.
  auto r = Run({"--ovmf", Ovmf("ovmf_AmdSev_suffix.bin"), "--kernel", Empty(), "--initrd", Empty(),
                "--append", "console=ttyS0 loglevel=7", "--vcpu-type", "EPYC-v4", "--vmm", "qemu",
                "--guest-features", "0x21"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "803f691094946e42068aaa3a8f9e26a5c89f36f7b73ecfb28c653360fe4b3aba7e534442e7e1e17895dfe7"
            "78d0228977\n");
  // The same signature three ways; the mode name in any case.
  for (const std::vector<std::string>& sig :
       {std::vector<std::string>{"--vcpu-sig", "0x800f12"},
        {"--vcpu-sig", "8392466"},
        {"--vcpu-family", "23", "--vcpu-model", "1", "--vcpu-stepping", "2"}}) {
    std::vector<std::string> args = {"--ovmf",
                                     Ovmf("ovmf_AmdSev_suffix.bin"),
                                     "--vmm",
                                     "qemu",
                                     "--mode",
                                     "SEV-SNP",
                                     "--guest-features",
                                     "33"};
    args.insert(args.end(), sig.begin(), sig.end());
    r = Run(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(absl::StartsWith(r.out, "e1e1ca029dd7973a")) << r.out;  // S9
  }
  // S8: GCE, 4 vCPUs, no signature needed.
  r = Run({"--ovmf", Ovmf("ovmf_AmdSev_suffix.bin"), "--kernel", Empty(), "--initrd", Empty(),
           "--append", "", "--vcpus", "4", "--vmm", "gce"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StartsWith(r.out, "5c5debf100fc339f")) << r.out;
  // V1 (SEV, 32 bytes) and S1 (--mode snp:ovmf-hash) with --json.
  r = Run({"--ovmf", Ovmf("ovmf_AmdSev_suffix.bin"), "--kernel", Empty(), "--initrd", Empty(),
           "--append", "console=ttyS0 loglevel=7", "--vmm", "qemu", "--mode", "sev", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["digest"], "82a3ee5d537c3620628270c292ae30cb40c3c878666a7890ee7ef2a08fb535ff");
  EXPECT_EQ(j["mode"], "sev");
  EXPECT_EQ(j["kernel_sha256"], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  r = Run({"--ovmf", Ovmf("ovmf_AmdSev_suffix.bin"), "--vmm", "qemu", "--mode", "snp:ovmf-hash"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StartsWith(r.out, "086e2e9149ebf45a")) << r.out;
  // --vcpu-sig 0 is a value, not "absent".
  r = Run({"--ovmf", Ovmf("ovmf_AmdSev_suffix.bin"), "--vmm", "qemu", "--vcpu-sig", "0"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(ReleaseCliTest, SvsmMode) {
  for (const char* name : {"svsm.bin", "svsm_ovmf.fd"}) {
    auto r = RunProcess({"/usr/bin/xz", "-dc", (fixtures_ / (std::string(name) + ".xz")).string()});
    ASSERT_EQ(r.exit_code, 0);
    attest::testing::WriteFileOrDie(dir_.path() / name, r.out);
  }
  auto r = Run({"--ovmf", (dir_.path() / "svsm_ovmf.fd").string(), "--svsm",
                (dir_.path() / "svsm.bin").string(), "--vars-size", "540672", "--vcpus", "2",
                "--vcpu-type", "EPYC-v4", "--vmm", "qemu", "--mode", "snp:svsm"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StartsWith(r.out, "9b94745036aafddf")) << r.out;  // S16
}

TEST_F(ReleaseCliTest, BadInputIsNamedWithExitTwo) {
  struct Bad {
    std::vector<std::string> args;
    const char* named;
  };
  const std::string amd = Ovmf("ovmf_AmdSev_suffix.bin"), x64 = Ovmf("ovmf_OvmfX64_suffix.bin");
  const Bad cases[] = {
      {{"--ovmf", x64, "--kernel", Empty(), "--initrd", Empty(), "--append", "", "--vcpu-type",
        "EPYC-v4", "--vmm", "qemu"},
       "SNP_KERNEL_HASHES"},  // S14
      {{"--ovmf", x64, "--kernel", Empty(), "--vmm", "qemu", "--mode", "seves"},
       "doesn't support kernel/initrd/cmdline measurement"},  // E3
      {{"--ovmf", amd, "--vmm", "qemu"}, "vCPU signature"},   // QEMU needs one
      {{"--ovmf", amd, "--vmm", "qemu", "--vcpu-sig", "1", "--mode", "foo"}, "--mode"},
      {{"--ovmf", amd, "--vmm", "kvm", "--vcpu-sig", "1"}, "--vmm"},
      {{"--ovmf", amd, "--vcpu-sig", "1"}, "--vmm"},     // required
      {{"--vmm", "qemu", "--vcpu-sig", "1"}, "--ovmf"},  // required
      {{"--ovmf", amd, "--vmm", "qemu", "--vcpu-type", "Skylake"}, "--vcpu-type"},
      {{"--ovmf", amd, "--vmm", "qemu", "--vcpu-sig", "zz"}, "--vcpu-sig"},
      {{"--ovmf", amd, "--vmm", "qemu", "--vcpu-sig", "1", "--vcpu-type", "EPYC"}, "once"},
      {{"--ovmf", amd, "--vmm", "qemu", "--vcpu-family", "23"}, "all three"},
      {{"--ovmf", amd, "--vmm", "qemu", "--vcpu-sig", "1", "--vcpus", "0"}, "--vcpus"},
      {{"--ovmf", amd, "--vmm", "qemu", "--vcpu-sig", "1", "--initrd", Empty()}, "need --kernel"},
      {{"--ovmf", Empty(), "--vmm", "qemu", "--vcpu-sig", "1"}, "4 KiB pages"},
      {{"--ovmf", "/nonexistent", "--vmm", "qemu", "--vcpu-sig", "1"}, "--ovmf"},
      {{"--ovmf", amd, "--vmm", "qemu", "--vcpu-sig", "1", "--mode", "snp:svsm"}, "--svsm"},
  };
  for (const auto& c : cases) {
    auto r = Run(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.named << ": " << r.out << r.err;
    EXPECT_TRUE(r.out.empty()) << c.named;
    EXPECT_TRUE(absl::StrContains(r.err, c.named)) << c.named << ": " << r.err;
  }
}

}  // namespace
