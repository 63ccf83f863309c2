// The appliance image end to end (issue 7, label `e2e`): the image that scripts/build-image made
// from this commit (the CTest fixture `appliance_image`, label `image`) boots in QEMU with a swtpm
// vTPM and the launch configuration as an SMBIOS credential; a coordinator attests it with
// `appliance-verify connect --allow-vtpm-only` against the build's reference-values.json (boot
// PCRs 4/7/9/11/12 precomputed from the artifacts, the firmware event log replayed against the
// quote, PCR 15's runtime log) and runs a prediction; coordinator-side policy failures are named.
// Then three negative boots, each rejected naming the PCRs and events that differ: a host-chosen
// kernel command line, a modified UKI, an image with another model container. One boot per
// case; every VM and swtpm is stopped, also when a test fails.
#include <gtest/gtest.h>

#include <cctype>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "appliance_fixture.h"
#include "e2e_vm.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using attest::testing::BootedVm;
using attest::testing::Coordinator;
using attest::testing::kImage;
using attest::testing::kRoot;
using attest::testing::ProcessResult;
using attest::testing::RunProcess;

fs::path BuildReference() { return kImage / "reference-values.json"; }

class ImageE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(kImage / "image.raw")) return;  // each test skips with the reason
    coordinator_ = new Coordinator();
    vm_ = new BootedVm(kImage, coordinator_->config(), coordinator_->dir.path() / "vm");
  }
  static void TearDownTestSuite() {
    delete vm_;
    delete coordinator_;
    vm_ = nullptr;
    coordinator_ = nullptr;
  }
  void SetUp() override {
    if (coordinator_ == nullptr)
      GTEST_SKIP() << "no image at " << kImage << " (scripts/build-image)";
    ASSERT_TRUE(vm_->ok()) << vm_->failure();
  }

  static fs::path config() { return coordinator_->config(); }
  static fs::path reference() { return BuildReference(); }
  ProcessResult Connect(const std::vector<std::string>& extra) {
    return coordinator_->Connect(vm_->target(), extra);
  }

  static Coordinator* coordinator_;
  static BootedVm* vm_;
};

Coordinator* ImageE2eTest::coordinator_ = nullptr;
BootedVm* ImageE2eTest::vm_ = nullptr;

// The units the console reports failed.
std::vector<std::string> FailedUnits(const std::string& text) {
  std::vector<std::string> failed;
  for (size_t at = text.find("Failed to start "); at != std::string::npos;
       at = text.find("Failed to start ", at + 1)) {
    failed.push_back(text.substr(at + 16, text.find_first_of(" .\r\n\x1b", at + 16) - at - 16));
  }
  return failed;
}

bool CheckPassed(const nlohmann::json& result, const std::string& name) {
  bool seen = false;
  for (const auto& c : result["checks"]) {
    if (c["name"] == name) {
      if (!c["ok"].get<bool>()) return false;
      seen = true;
    }
  }
  return seen;
}

TEST_F(ImageE2eTest, CoordinatorAttestsAndPredicts) {
  auto r = Connect({"--launch-config", config().string(), "--reference", reference().string(),
                    "--allow-vtpm-only", "--predict", R"({"instances": [[0.5, 0.1]]})", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["claims"]["platform"], "vtpm-only");
  EXPECT_EQ(j["claims"]["container_digest"], attest::testing::ExampleModelDigest());
  // The running release (the image's release version and its booted root hash) comes right
  // after the launch configuration, then the client-revocation list it applies (none yet: /var
  // is fresh on every boot; docs/release-channel.md).
  EXPECT_EQ(j["claims"]["runtime_events"],
            nlohmann::json::array(
                {"launch-config", "release", "client-revocations", "container-manifest"}));
  EXPECT_EQ(j["claims"]["release_version"], 1);
  const auto roothash_file = attest::testing::ReadFileOrDie(kImage / "image.root.roothash");
  std::string roothash(roothash_file.begin(), roothash_file.end());
  roothash.erase(roothash.find_last_not_of(" \n") + 1);
  EXPECT_EQ(j["claims"]["release_target_sha256"], roothash);
  EXPECT_EQ(j["claims"]["tpm_trust"], "host");
  EXPECT_TRUE(j["prediction"].contains("predictions")) << j.dump(2);
  // The boot: the firmware log (with the PCR 11 phases) replays to the quote, and PCRs 4, 7, 9,
  // 11 and 12 equal the values precomputed from the build's artifacts.
  EXPECT_TRUE(CheckPassed(j, "tpm.eventlog.replay")) << j["checks"].dump(2);
  EXPECT_TRUE(CheckPassed(j, "tpm.pcr.reference")) << j["checks"].dump(2);
  EXPECT_TRUE(CheckPassed(j, "tpm.pcr15.replay")) << j["checks"].dump(2);
  // Boot counting: systemd-boot started the UKI with its try counter, and the boot was blessed
  // (the counter dropped) once the supervisor was READY; systemd-bless-boot runs after READY, so
  // its line may reach the console after the connect above.
  const std::string text = vm_->WaitForConsole("Finished systemd-bless-boo", 60);
  EXPECT_TRUE(absl::StrContains(text, "Finished systemd-bless-boo")) << "no blessed boot";
  // The console shows boot progress and no failed unit, and no login prompt.
  auto failed = FailedUnits(text);
  EXPECT_TRUE(failed.empty()) << "failed units on the console: " << absl::StrJoin(failed, ", ");
  EXPECT_FALSE(absl::StrContains(text, "login:"));
}

TEST_F(ImageE2eTest, CoordinatorPolicyFailuresAreNamed) {
  // Without an explicit acceptance of a host vTPM as the only runtime proof.
  auto r = Connect({"--launch-config", config().string(), "--reference", reference().string()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "platform.vtpm-only")) << r.err;
  // A coordinator expecting another launch configuration.
  auto other = nlohmann::json::parse(attest::testing::ReadFileOrDie(config()));
  other["limits"]["query_budget"] = 7;
  const fs::path other_path = coordinator_->dir.path() / "other-config.json";
  attest::testing::WriteFileOrDie(other_path, other.dump(2) + "\n");
  r = Connect({"--launch-config", other_path.string(), "--reference", reference().string(),
               "--allow-vtpm-only"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "launch")) << r.err;
  // Reference values for another model container.
  auto ref2 = nlohmann::json::parse(attest::testing::ReadFileOrDie(reference()));
  ref2["container_digests"] = {"sha256:" + std::string(64, '0')};
  const fs::path ref2_path = coordinator_->dir.path() / "other-reference.json";
  attest::testing::WriteFileOrDie(ref2_path, ref2.dump(2) + "\n");
  r = Connect({"--launch-config", config().string(), "--reference", ref2_path.string(),
               "--allow-vtpm-only"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "runtime.container")) << r.err;
}

// Negative boots: each boots a tampered image and expects the coordinator, holding the build's
// reference values, to refuse it naming the PCRs and events that differ.
class ImageNegativeBootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kImage / "image.raw")) {
      GTEST_SKIP() << "no image at " << kImage << " (scripts/build-image)";
    }
  }
  // Boots IMAGE_DIR and connects with the build's reference; returns the connect result.
  ProcessResult BootAndConnect(const fs::path& image_dir, const fs::path& reference) {
    BootedVm vm(image_dir, coordinator_.config(), coordinator_.dir.path() / "vm");
    if (!vm.ok()) {
      ADD_FAILURE() << vm.failure();
      return {};
    }
    auto r =
        coordinator_.Connect(vm.target(), {"--launch-config", coordinator_.config().string(),
                                           "--reference", reference.string(), "--allow-vtpm-only"});
    std::printf("coordinator: exit %d: %s", r.exit_code, r.err.c_str());
    // What the console says about the TPM and the PCR 11 boot phases (a missed phase makes the
    // firmware log's replay disagree with the quote before the reference is compared).
    std::istringstream console(vm.Console());
    for (std::string line; std::getline(console, line);) {
      if (absl::StrContains(line, "PCR") || absl::StrContains(line, "TPM") ||
          absl::StrContains(line, "tpm")) {
        std::printf("console: %s\n", line.c_str());
      }
    }
    return r;
  }
  fs::path Variant(const std::string& name, const std::string& mode, const std::string& value) {
    const fs::path out = coordinator_.dir.path() / name;
    auto r = RunProcess(
        {(kRoot / "scripts/image-variant").string(), kImage.string(), out.string(), mode, value},
        300);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return out;
  }
  static std::string Cmdline() {
    auto c = attest::testing::ReadFileOrDie(kImage / "image.cmdline");
    return std::string(c.begin(), c.end());
  }

  Coordinator coordinator_;
};

TEST_F(ImageNegativeBootTest, HostChosenCommandLineIsRejected) {
  // Same binaries; systemd-boot starts the UKI with a command line of the host's choosing (a
  // loader entry's options; possible without Secure Boot): the stub and the kernel measure it
  // into PCR 12 and PCR 9. PCR 4 and PCR 11 (the binaries, the UKI's sections) are unchanged.
  auto image = Variant("cmdline", "--entry-options", Cmdline() + " appliance.tampered=1");
  auto r = BootAndConnect(image, BuildReference());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "tpm.pcr.reference")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "PCR 9 (sha256)")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "PCR 12 (sha256)")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "'LOADED_IMAGE::LoadOptions")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "'load options (systemd-boot)'")) << r.err;
  EXPECT_FALSE(absl::StrContains(r.err, "PCR 4 (")) << r.err;
  EXPECT_FALSE(absl::StrContains(r.err, "PCR 11 (")) << r.err;
}

TEST_F(ImageNegativeBootTest, ModifiedUkiIsRejected) {
  // The UKI's own .cmdline section edited: firmware measures another UKI (PCR 4), the stub
  // another .cmdline section (PCR 11).
  auto image = Variant("uki", "--uki-cmdline-append", "appliance.tampered=1");
  auto r = BootAndConnect(image, BuildReference());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "PCR 4 (sha256)")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "'the UKI (Authenticode)'")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "PCR 11 (sha256)")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "'.cmdline (contents)'")) << r.err;
}

TEST_F(ImageNegativeBootTest, SwappedContainerIsRejected) {
  // An image built the same way around another model container (the example model with one more
  // environment variable): the root file system, so its verity root hash, so the UKI's command
  // line differ (PCR 4, PCR 11); and the runtime log names the other container (PCR 15).
  const fs::path model = coordinator_.dir.path() / "swapped-model";
  const fs::path build = fs::path(APPLIANCE_BUILD_DIR);
  auto r = RunProcess({(kRoot / "guest/example-model/pack-oci").string(),
                       (build / "bin/example-model-server").string(),
                       (build / "example-model/weights.json").string(), model.string(),
                       "APPLIANCE_MODEL_VARIANT=swapped"},
                      120);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto swapped_digest = attest::testing::ReadFileOrDie(model / "digest");
  const std::string digest(swapped_digest.begin(), swapped_digest.end());
  ASSERT_NE(digest.substr(0, 71), attest::testing::ExampleModelDigest());
  r = RunProcess({"/usr/bin/env", "APPLIANCE_IMAGE_MODEL_DIR=" + model.string(),
                  (kRoot / "scripts/build-image").string(), (build / "image-swapped").string()},
                 1200);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // A coordinator that pins only the runtime (no boot PCRs) still refuses the container.
  nlohmann::json runtime_only = {{"version", 1},
                                 {"container_digests", {attest::testing::ExampleModelDigest()}}};
  const fs::path runtime_ref = coordinator_.dir.path() / "runtime-only.json";
  attest::testing::WriteFileOrDie(runtime_ref, runtime_only.dump() + "\n");

  BootedVm vm(build / "image-swapped", coordinator_.config(), coordinator_.dir.path() / "vm");
  ASSERT_TRUE(vm.ok()) << vm.failure();
  auto full = coordinator_.Connect(
      vm.target(), {"--launch-config", coordinator_.config().string(), "--reference",
                    BuildReference().string(), "--allow-vtpm-only"});
  std::printf("coordinator: exit %d: %s", full.exit_code, full.err.c_str());
  EXPECT_EQ(full.exit_code, 1) << full.out << full.err;
  EXPECT_TRUE(absl::StrContains(full.err, "PCR 4 (sha256)")) << full.err;
  EXPECT_TRUE(absl::StrContains(full.err, "PCR 11 (sha256)")) << full.err;
  EXPECT_TRUE(absl::StrContains(full.err, "'.cmdline (contents)'")) << full.err;
  auto runtime =
      coordinator_.Connect(vm.target(), {"--launch-config", coordinator_.config().string(),
                                         "--reference", runtime_ref.string(), "--allow-vtpm-only"});
  std::printf("coordinator (runtime-only reference): exit %d: %s", runtime.exit_code,
              runtime.err.c_str());
  EXPECT_EQ(runtime.exit_code, 1) << runtime.out << runtime.err;
  EXPECT_TRUE(absl::StrContains(runtime.err, "runtime.container")) << runtime.err;
  EXPECT_TRUE(absl::StrContains(runtime.err, digest.substr(7, 64))) << runtime.err;
}

}  // namespace
