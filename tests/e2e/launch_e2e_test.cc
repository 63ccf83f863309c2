// appliance-launch end to end (issue 9; label e2e): a real QEMU domain through libvirt's embedded
// QEMU driver (qemu:///embed?root=..., no daemon; TCG here): the probe reports what this host can
// run and why, then an operator defines, starts and waits for a vtpm-only domain from the image,
// a coordinator attests it with appliance-verify connect against the image's reference values,
// and the operator stops and undefines it. The domain, its swtpm and its files are always gone
// afterwards.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "e2e_vm.h"

namespace {

namespace fs = std::filesystem;
using attest::testing::Coordinator;
using attest::testing::kImage;
using attest::testing::ProcessResult;
using attest::testing::RunProcess;
using nlohmann::json;

const fs::path kLaunch = fs::path(APPLIANCE_BUILD_DIR) / "bin/appliance-launch";

// Processes whose command line mentions `needle` (QEMU and swtpm started for the embed root).
std::vector<std::string> ProcessesMentioning(const std::string& needle) {
  std::vector<std::string> found;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string pid = entry.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline", std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (char& c : cmdline) c = c == '\0' ? ' ' : c;
    if (absl::StrContains(cmdline, needle) && !absl::StrContains(cmdline, "launch_e2e_tests")) {
      found.push_back(pid + ": " + cmdline.substr(0, 120));
    }
  }
  return found;
}

TEST(LaunchE2eTest, OperatorLaunchesVerifiesAndStopsThroughLibvirt) {
  if (!fs::exists(kImage / "image.raw")) {
    GTEST_SKIP() << "no image at " << kImage << " (scripts/build-image)";
  }
  attest::testing::ScopedTempDir tmp;
  // The embedded driver's tree (docs/launch.md): QEMU and swtpm run as root (the temporary
  // directory is private to root), stdio goes to files (no virtlogd).
  const fs::path root = tmp.path() / "libvirt";
  fs::create_directories(root / "etc");
  attest::testing::WriteFileOrDie(root / "etc/qemu.conf",
                                  std::string("user = \"root\"\ngroup = \"root\"\n"
                                              "swtpm_user = \"root\"\nswtpm_group = \"root\"\n"
                                              "stdio_handler = \"file\"\nremember_owner = 0\n"));
  const std::string uri = "qemu:///embed?root=" + root.string();
  const std::string name = "appliance-e2e";
  auto launch = [&](std::vector<std::string> args, int timeout = 120) {
    args.insert(args.begin(), {kLaunch.string(), "--connect", uri});
    return RunProcess(args, timeout);
  };
  absl::Cleanup teardown = [&] {
    launch({"stop", "--name", name, "--force"});
    launch({"undefine", "--name", name});
    for (const auto& p : ProcessesMentioning(root.string())) {
      ADD_FAILURE() << "left running: " << p;
      RunProcess({"/bin/kill", "-9", p.substr(0, p.find(':'))});
    }
  };

  // The probe: no SEV-SNP, no TDX here (and why); KVM only if a probe boot works.
  auto r = launch({"probe", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json probe = json::parse(r.out);
  std::printf("probe: platform=%s accel=%s; kvm: %s\n",
              probe["platform"].get<std::string>().c_str(),
              probe["accel"].get<std::string>().c_str(), probe["kvm"].dump().c_str());
  EXPECT_EQ(probe["platform"], "vtpm-only");
  for (const char* cvm : {"sev_snp", "tdx"}) {
    EXPECT_EQ(probe[cvm]["usable"], false) << probe.dump(2);
    EXPECT_FALSE(probe[cvm]["why"].empty()) << probe.dump(2);
  }
  EXPECT_EQ(probe["vtpm"]["usable"], true) << probe.dump(2);
  if (!probe["kvm"]["usable"].get<bool>()) {
    EXPECT_TRUE(probe["kvm"].contains("why")) << probe.dump(2);
    EXPECT_EQ(probe["accel"], "tcg");
  }

  Coordinator coordinator;
  const auto start = std::chrono::steady_clock::now();
  r = launch({"define", "--name", name, "--image", kImage.string(), "--launch-config",
              coordinator.config().string(), "--platform", "vtpm-only", "--accel",
              probe["accel"].get<std::string>(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json defined = json::parse(r.out);
  const fs::path state_dir = defined["state_dir"].get<std::string>();
  EXPECT_EQ(defined["files"][0]["kept"], false);
  r = launch({"start", "--name", name, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = launch({"start", "--name", name, "--json"});  // idempotent
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["started"], false);
  r = launch({"wait", "--name", name, "--timeout", "420"}, 450);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string target = r.out.substr(0, r.out.find('\n'));
  std::printf("define + start + wait until the supervisor answers: %.1f s (%s)\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
              target.c_str());

  // The coordinator attests the domain against the image's reference values.
  r = coordinator.Connect(
      target, {"--launch-config", coordinator.config().string(), "--reference",
               (kImage / "reference-values.json").string(), "--allow-vtpm-only", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const json verified = json::parse(r.out);
  EXPECT_EQ(verified["claims"]["platform"], "vtpm-only");
  for (const auto& c : verified["checks"]) {
    if (c["name"] == "tpm.pcr.reference") {
      EXPECT_TRUE(c["ok"].get<bool>()) << c.dump();
    }
  }

  r = launch({"status", "--name", name, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json status = json::parse(r.out);
  EXPECT_EQ(status["state"], "running");
  EXPECT_EQ(status["target"], target);
  EXPECT_EQ(status["supervisor_ready"], true);

  // Stop (ACPI first), undefine: each twice, the second a no-op.
  r = launch({"stop", "--name", name, "--timeout", "60", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::printf("stop: %s\n", json::parse(r.out)["how"].get<std::string>().c_str());
  r = launch({"stop", "--name", name, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["stopped"], false);
  r = launch({"undefine", "--name", name, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json undefined = json::parse(r.out);
  EXPECT_EQ(undefined["undefined"], true);
  EXPECT_EQ(undefined["vtpm_state_removed"], true);
  r = launch({"undefine", "--name", name, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["undefined"], false);
  r = launch({"status", "--name", name});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_FALSE(fs::exists(state_dir)) << state_dir;
  EXPECT_TRUE(ProcessesMentioning(root.string()).empty());
}

}  // namespace
