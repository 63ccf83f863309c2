// The appliance booted in QEMU for the e2e tests (label `e2e`): the coordinator's side (its PKI,
// the launch configuration it expects, `appliance-verify connect`) and a VM started with
// scripts/boot-image, stopped (with its swtpm) when it goes out of scope.
#ifndef TESTS_E2E_E2E_VM_H_
#define TESTS_E2E_E2E_VM_H_

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "appliance_fixture.h"
#include "launcher.h"
#include "test_support.h"

namespace attest::testing {

inline const std::filesystem::path kRoot = APPLIANCE_SOURCE_DIR;
inline const std::filesystem::path kImage = std::filesystem::path(APPLIANCE_BUILD_DIR) / "image";

// The coordinator's side: its PKI, the launch configuration it expects, and a connect command.
struct Coordinator {
  attest::testing::ScopedTempDir dir;
  attest::testing::TestPki pki{dir.path() / "pki", "Coordinator CA"};
  attest::testing::IssuedCert client = pki.Issue("coordinator", "client");

  Coordinator() {
    attest::testing::LaunchConfigSpec spec;
    spec.listen = "0.0.0.0:8443";
    spec.ca_pem = pki.ca_pem();
    spec.image = "/usr/share/appliance/example-model.oci.tar";
    spec.runner = "systemd";
    spec.platform = "vtpm-only";
    spec.tcti = "device:/dev/tpmrm0";
    attest::testing::WriteFileOrDie(config(), attest::testing::MakeLaunchConfig(spec));
  }
  std::filesystem::path config() const { return dir.path() / "launch-config.json"; }

  ProcessResult Connect(const std::string& target, const std::vector<std::string>& extra) const {
    std::vector<std::string> argv = {
        (std::filesystem::path(APPLIANCE_BUILD_DIR) / "bin/appliance-verify").string(),
        "connect",
        target,
        "--cert",
        client.cert_path.string(),
        "--key",
        client.key_path.string(),
        "--timeout",
        "60"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunProcess(argv, 120);
  }
};

// A booted VM, stopped (with its swtpm) when it goes out of scope.
class BootedVm {
 public:
  // `env`: extra environment of scripts/boot-image (e.g. APPLIANCE_BOOT_CHANNEL_PORT).
  BootedVm(const std::filesystem::path& image_dir, const std::filesystem::path& config,
           std::filesystem::path work, const std::vector<std::string>& env = {})
      : work_(std::move(work)) {
    std::vector<std::string> argv = {"/usr/bin/env"};
    argv.insert(argv.end(), env.begin(), env.end());
    for (const std::string& a : {(kRoot / "scripts/boot-image").string(), std::string("start"),
                                 image_dir.string(), config.string(), work_.string()}) {
      argv.push_back(a);
    }
    boot_ = RunProcess(argv, 420);
    if (boot_.exit_code == 0) {
      target_ = boot_.out.substr(0, boot_.out.find('\n'));
      auto b = attest::testing::ReadFileOrDie(work_ / "boot.txt");
      std::printf("%s: boot to READY: %s", image_dir.filename().c_str(),
                  std::string(b.begin(), b.end()).c_str());
    }
  }
  ~BootedVm() { RunProcess({(kRoot / "scripts/boot-image").string(), "stop", work_.string()}); }
  BootedVm(const BootedVm&) = delete;
  BootedVm& operator=(const BootedVm&) = delete;

  bool ok() const { return boot_.exit_code == 0; }
  std::string failure() const { return boot_.out + boot_.err; }
  const std::string& target() const { return target_; }
  std::filesystem::path serial_log() const { return work_ / "serial.log"; }

  // The console's text so far, without colour escapes (appliance::launch::ConsoleText).
  std::string Console() const {
    const auto serial = attest::testing::ReadFileOrDie(serial_log());
    return appliance::launch::ConsoleText(
        absl::string_view(reinterpret_cast<const char*>(serial.data()), serial.size()));
  }

  // Polls the console (once a second, at most `timeout_s` seconds) until it shows `what`; returns
  // the console's text at that point. Units that follow READY (systemd-bless-boot) print later.
  std::string WaitForConsole(const std::string& what, int timeout_s) const {
    std::string text = Console();
    for (int i = 0; i < timeout_s && text.find(what) == std::string::npos; ++i) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      text = Console();
    }
    return text;
  }

 private:
  std::filesystem::path work_;
  ProcessResult boot_;
  std::string target_;
};

}  // namespace attest::testing

#endif  // TESTS_E2E_E2E_VM_H_
