// The update demo in the VM (issue 8, label `e2e`): an operator creates a release channel, builds
// release 1 and release 2 of the image with the channel's trusted root (scripts/build-image,
// APPLIANCE_RELEASE_VERSION), and publishes release 2 (UKI, root and verity images, reference
// values, SBOM) into a repository served on loopback. Release 1 boots in QEMU with a swtpm vTPM and
// the repository as its update channel (guestfwd: the guest reaches that one port and nothing
// else); its updater commits release 1, installs release 2 into the empty B slot and reboots;
// release 2 boots (its first try), reaches READY and is blessed. A coordinator then sees release 2
// in the evidence, bound to the runtime log, verifies it against release 2's reference values, and
// checks with appliance-verify release that those reference values are a release of the channel
// whose targets version is in the transparency log.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "appliance_fixture.h"
#include "e2e_vm.h"
#include "static_http_server.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using attest::testing::BootedVm;
using attest::testing::Coordinator;
using attest::testing::kImage;
using attest::testing::kRoot;
using attest::testing::ProcessResult;
using attest::testing::RunProcess;
using json = nlohmann::json;

const fs::path kBuild = APPLIANCE_BUILD_DIR;
constexpr char kPass[] = "correct horse battery";

ProcessResult Release(const std::vector<std::string>& args) {
  return attest::testing::RunReleaseTool((kBuild / "bin/appliance-release").string(), args, kPass,
                                         300);
}

std::string Text(const fs::path& p) {
  auto b = attest::testing::ReadFileOrDie(p);
  return std::string(b.begin(), b.end());
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(UpdateE2eTest, ApplianceUpdatesFromTheChannelRebootsAndReportsTheNewRelease) {
  if (!fs::exists(kImage / "image.raw")) {
    GTEST_SKIP() << "no image at " << kImage << " (scripts/build-image)";
  }
  attest::testing::ScopedTempDir tmp;
  const fs::path w = tmp.path() / "channel", repo = tmp.path() / "repo";
  auto r = Release({"init", "--workdir", w.string(), "--name", "appliance-releases"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Release({"publish", "--workdir", w.string(), "--repo", repo.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path root = tmp.path() / "channel-root.json";
  fs::copy_file(repo / "1.root.json", root);

  // Releases 1 and 2 of the image, with the channel's root.
  std::map<int, fs::path> images;
  for (int v : {1, 2}) {
    images[v] = kBuild / absl::StrCat("image-release-", v);
    const auto start = absl::Now();
    r = RunProcess({"/usr/bin/env", absl::StrCat("APPLIANCE_RELEASE_VERSION=", v),
                    "APPLIANCE_IMAGE_CHANNEL_ROOT=" + root.string(),
                    (kRoot / "scripts/build-image").string(), images[v].string()},
                   1500);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    std::printf("release %d image built in %s\n", v,
                absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Seconds(1))).c_str());
  }
  // Release 2 published: its UKI, root image (with its verity root hash), verity data and
  // reference values.
  const fs::path i2 = images[2];
  std::string roothash = Text(i2 / "image.root.roothash");
  while (!roothash.empty() && std::isspace(static_cast<unsigned char>(roothash.back()))) {
    roothash.pop_back();
  }
  for (const auto& [file, kind] : std::vector<std::pair<std::string, std::string>>{
           {"image.efi", "uki"},
           {"image.root.raw", "root"},
           {"image.root.verity", "verity"},
           {"reference-values.json", "reference-values"},
           {"sbom.json", "sbom"}}) {
    std::vector<std::string> args = {
        "add-target",          "--workdir",  w.string(), (i2 / file).string(), "--name",
        "appliance_2_" + file, "--kind",     kind,       "--release-version",  "2",
        "--hardware",          "qemu-x86_64"};
    if (kind == "root") {
      args.push_back("--roothash");
      args.push_back(roothash);
    }
    r = Release(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  r = Release({"sign", "--workdir", w.string(), "--min-release-version", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Release({"publish", "--workdir", w.string(), "--repo", repo.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  attest::testing::StaticHttpServer server(repo);
  const std::string port = server.url().substr(server.url().rfind(':') + 1);

  // Release 1 boots with the channel; the updater installs release 2 and reboots into it.
  Coordinator coordinator;
  const auto start = absl::Now();
  BootedVm vm(images[1], coordinator.config(), tmp.path() / "vm",
              {"APPLIANCE_BOOT_CHANNEL_PORT=" + port});
  ASSERT_TRUE(vm.ok()) << vm.failure();
  std::string serial;
  for (int i = 0; i < 900; ++i) {  // ≤ 15 min: download, slot write, reboot, boot to READY
    serial = Text(vm.serial_log());
    if (Count(serial, "appliance-supervisor: ready") >= 2) break;
    if (absl::StrContains(serial, "Failed to start Confidential model appliance updater")) break;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  std::printf("release 1 boot to release 2 READY: %s\n",
              absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Seconds(1))).c_str());
  ASSERT_EQ(Count(serial, "appliance-supervisor: ready"), 2u)
      << serial.substr(serial.size() > 6000 ? serial.size() - 6000 : 0);
  EXPECT_TRUE(absl::StrContains(serial, "appliance-update: rebooting into the new release"));

  // The coordinator: release 2's reference values, the channel's policy (minimum release 2).
  const fs::path meta = tmp.path() / "coordinator-channel";
  r = RunProcess({(kBuild / "bin/appliance-verify").string(), "release", "--metadata-dir",
                  meta.string(), "--metadata-url", repo.string(), "--trusted-root", root.string(),
                  "--reference-values", (i2 / "reference-values.json").string(), "--require-logged",
                  "--log-key", (repo / "log/log.json").string(), "--require-sbom", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["release_version"], 2);
  EXPECT_EQ(json::parse(r.out)["sbom"]["target"], "appliance_2_sbom.json");
  r = coordinator.Connect(vm.target(),
                          {"--launch-config", coordinator.config().string(), "--reference",
                           (i2 / "reference-values.json").string(), "--allow-vtpm-only",
                           "--release-metadata", meta.string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const json claims = json::parse(r.out)["claims"];
  EXPECT_EQ(claims["release_version"], 2);
  EXPECT_EQ(claims["release_target_sha256"], roothash);
  // Release 1's reference values no longer match the running appliance.
  r = coordinator.Connect(vm.target(),
                          {"--launch-config", coordinator.config().string(), "--reference",
                           (images[1] / "reference-values.json").string(), "--allow-vtpm-only"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
}

}  // namespace
