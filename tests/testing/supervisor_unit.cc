#include "supervisor_unit.h"

#include <chrono>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace attest::testing {

namespace fs = std::filesystem;

namespace {

absl::Status Check(const ProcessResult& r, const std::string& what) {
  if (r.exit_code == 0) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, " exited ", r.exit_code, ": ", r.out, r.err));
}

}  // namespace

absl::StatusOr<std::unique_ptr<SupervisorUnit>> SupervisorUnit::Create(const fs::path& dir,
                                                                       const Options& options) {
  const fs::path build = BinDir().parent_path();
  for (const char* hidden : {"/home/", "/root/", "/tmp/", "/run/user/"}) {
    if (build.string().rfind(hidden, 0) == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("the build tree ", build.string(), " is under ", hidden,
                       ", which the supervisor's unit hides (ProtectHome=, PrivateTmp=)"));
    }
  }
  std::unique_ptr<SupervisorUnit> u(new SupervisorUnit());
  u->dir_ = dir;
  auto booted = NspawnSystemd::Boot(dir, dir / "nspawn.log", {build});
  if (!booted.ok()) return booted.status();
  u->systemd_ = std::move(*booted);
  NspawnSystemd& sd = *u->systemd_;

  // The swtpm, as a unit of the container's systemd (so in the container's network).
  fs::create_directories(dir / "tpm");
  absl::Status s =
      Check(RunProcess(sd.Inside(
                {"systemd-run", "--unit=appliance-test-swtpm", "--property=Type=simple", "swtpm",
                 "socket", "--tpm2", "--server",
                 absl::StrCat("type=tcp,port=", kSwtpmPort, ",bindaddr=127.0.0.1"), "--ctrl",
                 absl::StrCat("type=tcp,port=", kSwtpmPort + 1, ",bindaddr=127.0.0.1"), "--flags",
                 "not-need-init,startup-clear", "--tpmstate", "dir=" + (dir / "tpm").string()})),
            "systemd-run swtpm");
  if (!s.ok()) return s;
  bool up = false;
  for (int i = 0; i < 200 && !(up = sd.CanConnectInside(kSwtpmPort + 1)); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  if (!up) return absl::InternalError("swtpm did not listen inside the container");

  // Coordinator PKI, launch configuration (as a system credential) and reference values.
  u->pki_ = std::make_unique<TestPki>(dir / "pki", "Coordinator CA");
  u->client_ = u->pki_->Issue("coordinator", "client");
  LaunchConfigSpec spec;
  spec.listen = absl::StrCat("127.0.0.1:", kListenPort);
  spec.ca_pem = u->pki_->ca_pem();
  spec.tcti = absl::StrCat("swtpm:host=127.0.0.1,port=", kSwtpmPort);
  spec.runner = "systemd";
  spec.rps = options.requests_per_second;
  spec.burst = options.burst;
  u->config_ = dir / "launch-config.json";
  WriteFileOrDie(u->config_, MakeLaunchConfig(spec));
  fs::create_directories(sd.root() / "run/credstore");
  fs::copy_file(u->config_, sd.root() / "run/credstore/appliance.launch-config");
  u->reference_ = dir / "reference.json";
  WriteFileOrDie(u->reference_, MakeReferenceValues({ExampleModelDigest()}));

  // The unit as shipped, but for the binary's path, a smaller test ARK (RSA-2048, faster to
  // generate) and the drop-in.
  const auto shipped = ReadFileOrDie(fs::path(APPLIANCE_SOURCE_DIR) / "guest/systemd" / kUnit);
  std::string unit(shipped.begin(), shipped.end());
  const std::string installed = "/usr/lib/appliance/appliance-supervisor";
  const auto exec = unit.find("ExecStart=" + installed + " ");
  if (exec == std::string::npos)
    return absl::InternalError("the shipped unit's ExecStart= no longer starts " + installed);
  unit.insert(unit.find('\n', exec), " --software-rsa-bits 2048");
  unit = absl::StrReplaceAll(unit, {{installed, (BinDir() / "appliance-supervisor").string()}});
  const fs::path units = sd.root() / "run/systemd/system";
  WriteFileOrDie(units / kUnit, unit);
  fs::create_directories(units / (std::string(kUnit) + ".d"));
  std::string dropin = absl::StrCat("[Service]\nWatchdogSec=", options.watchdog_sec, "\n");
  if (options.watchdog_hook) dropin += "Environment=APPLIANCE_TEST_WATCHDOG_HOOK=1\n";
  WriteFileOrDie(units / (std::string(kUnit) + ".d") / "test.conf", dropin);
  s = Check(RunProcess(sd.Inside({"systemctl", "daemon-reload"})), "systemctl daemon-reload");
  if (!s.ok()) return s;
  // The sysusers snippet (the tss group of SupplementaryGroups=), as the image's boot applies it.
  fs::create_directories(sd.root() / "run/sysusers.d");
  fs::copy_file(fs::path(APPLIANCE_SOURCE_DIR) / "guest/systemd/appliance-sysusers.conf",
                sd.root() / "run/sysusers.d/appliance.conf");
  s = Check(RunProcess(sd.Inside({"systemd-sysusers", "appliance.conf"})),
            "systemd-sysusers appliance.conf");
  if (!s.ok()) return s;
  // The tmpfiles snippet, as the image's boot applies it.
  fs::create_directories(sd.root() / "run/tmpfiles.d");
  fs::copy_file(fs::path(APPLIANCE_SOURCE_DIR) / "guest/systemd/appliance-tmpfiles.conf",
                sd.root() / "run/tmpfiles.d/appliance.conf");
  s = Check(RunProcess(sd.Inside({"systemd-tmpfiles", "--create", "appliance.conf"})),
            "systemd-tmpfiles --create appliance.conf");
  if (!s.ok()) return s;
  return u;
}

SupervisorUnit::~SupervisorUnit() = default;

ProcessResult SupervisorUnit::Start(int timeout_seconds) {
  return RunProcess(systemd_->Inside({"systemctl", "start", kUnit}), timeout_seconds);
}

ProcessResult SupervisorUnit::Stop(int timeout_seconds) {
  return RunProcess(systemd_->Inside({"systemctl", "stop", kUnit}), timeout_seconds);
}

pid_t SupervisorUnit::HostPid() const {
  // The unit's cgroup, as the host sees it: cgroup.procs lists host PIDs.
  const auto procs = systemd_->FindCgroupFile(absl::StrCat(kUnit, "/cgroup.procs"));
  if (!procs) return -1;
  std::ifstream f(*procs);
  pid_t pid = -1;
  f >> pid;
  return f ? pid : -1;
}

std::vector<std::string> SupervisorUnit::ConnectArgv(const std::vector<std::string>& extra) {
  const fs::path roots = dir_ / "roots";
  fs::create_directories(roots);
  fs::copy_file(systemd_->root() / "var/lib/appliance/snp_ark.pem", roots / "snp_ark.pem",
                fs::copy_options::overwrite_existing);
  std::vector<std::string> argv = {(BinDir() / "appliance-verify").string(),
                                   "connect",
                                   absl::StrCat("127.0.0.1:", kListenPort),
                                   "--cert",
                                   client_.cert_path.string(),
                                   "--key",
                                   client_.key_path.string(),
                                   "--launch-config",
                                   config_.string(),
                                   "--reference",
                                   reference_.string(),
                                   "--roots",
                                   roots.string()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

std::string SupervisorUnit::JournalText() {
  const auto r = RunProcess(systemd_->Inside({"journalctl", "-u", kUnit, "--no-pager"}));
  return r.out + r.err;
}

}  // namespace attest::testing
