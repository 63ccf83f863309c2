// appliance-launch: launches the appliance image on a libvirt host (issue 9, docs/launch.md).
//
// Stable contract:
//   appliance-launch [--connect URI] probe [--json]
//   appliance-launch [--connect URI] {define | start | wait | stop | undefine | status} --name NAME
//     [--image DIR] [--launch-config F] [--platform sev-snp|tdx|vtpm-only] [--memory MiB]
//     [--vcpus N] [--timeout S] [--dump-xml] [--json]
// Further options: --accel kvm|tcg, --state-dir D, --network NET, --host-address A, --host-port P,
// --firmware F, --nvram-template F, --tdx-qgs-socket PATH, --libvirt-version V, --qemu-version V
// (generate for another host), --force (stop: destroy at once).
// Exit codes: 0 done, 1 the domain or host failed (libvirt's or the guest's error named),
// 2 usage error or malformed input. Every command is bounded by --timeout (a watchdog ends the
// process, naming the command, if libvirt does not answer in time).
#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "launcher.h"

namespace {

using appliance::launch::Launcher;
using appliance::launch::LaunchOptions;

int ExitCodeOf(const absl::Status& st) { return absl::IsInvalidArgument(st) ? 2 : 1; }

int Fail(const std::string& cmd, const absl::Status& st) {
  std::fprintf(stderr, "appliance-launch %s: %s\n", cmd.c_str(), std::string(st.message()).c_str());
  return ExitCodeOf(st);
}

// Ends the process if the command outlives its bound (libvirt calls can block on a dead host).
void StartWatchdog(const std::string& cmd, std::chrono::seconds bound) {
  std::thread([cmd, bound] {
    std::this_thread::sleep_for(bound);
    std::fprintf(
        stderr,
        "appliance-launch %s: timed out after %lld s (libvirt or the host did not answer)\n",
        cmd.c_str(), static_cast<long long>(bound.count()));
    std::fflush(stderr);
    std::_Exit(1);
  }).detach();
}

std::string Text(const std::string& cmd, const nlohmann::ordered_json& j) {
  if (cmd == "wait" && j.contains("target")) return j["target"].get<std::string>() + "\n";
  std::string out;
  for (const auto& [k, v] : j.items()) {
    out += k + ": " + (v.is_string() ? v.get<std::string>() : v.dump()) + "\n";
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"appliance-launch: the confidential model appliance on a libvirt host"};
  app.require_subcommand(1);
  LaunchOptions o;
  bool json = false;
  app.add_option("--connect,-c", o.connect, "libvirt URI (default: libvirt's default)");
  app.add_flag("--json", json, "machine-readable output");

  std::string platform, accel, libvirt_version, qemu_version;
  int timeout = 0;
  auto add_common = [&](CLI::App* sub) {
    sub->add_flag("--json", json, "machine-readable output");
    sub->add_option("--timeout", timeout, "seconds this command may take")
        ->check(CLI::Range(1, 86400));
  };
  auto* probe = app.add_subcommand("probe", "what this host can run (SEV-SNP, TDX, KVM, vTPM)");
  add_common(probe);
  std::vector<CLI::App*> domain_cmds;
  for (const char* name : {"define", "start", "wait", "stop", "undefine", "status"}) {
    auto* sub = app.add_subcommand(name);
    add_common(sub);
    sub->add_option("--name", o.name, "the domain's name")->required();
    sub->add_option("--image", o.image_dir, "the image build's output folder");
    sub->add_option("--launch-config", o.launch_config, "the launch configuration (JSON)");
    sub->add_option("--platform", platform,
                    "sev-snp | tdx | vtpm-only (default: the probe's choice)");
    sub->add_option("--memory", o.memory_mib, "MiB")->check(CLI::Range(256, 4194304));
    sub->add_option("--vcpus", o.vcpus)->check(CLI::Range(1, 512));
    sub->add_flag("--dump-xml", o.dump_xml, "print the domain XML instead of defining it");
    sub->add_option("--accel", accel, "kvm | tcg (vtpm-only; default: the probe's answer)");
    sub->add_option("--state-dir", o.state_dir,
                    "the domain's files (disk copy, NVRAM, console log)");
    sub->add_option("--network", o.network,
                    "a libvirt network (default: user-mode, one port forward)");
    sub->add_option("--host-address", o.host_address, "user mode: the forward's host address");
    sub->add_option("--host-port", o.host_port, "user mode: the forward's host port (0: pick)");
    sub->add_option("--firmware", o.firmware, "OVMF code (vtpm-only) or the SNP/TDX firmware");
    sub->add_option("--nvram-template", o.nvram_template, "vtpm-only: OVMF variables template");
    sub->add_option("--tdx-qgs-socket", o.tdx_qgs_socket,
                    "tdx: the quote generation service socket");
    sub->add_option("--libvirt-version", libvirt_version, "generate for this libvirt version");
    sub->add_option("--qemu-version", qemu_version, "generate for this QEMU version");
    sub->add_flag("--force", o.force, "stop: destroy at once");
    domain_cmds.push_back(sub);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  const std::string cmd = app.get_subcommands().front()->get_name();
  if (!platform.empty()) {
    auto p = appliance::launch::ParsePlatform(platform);
    if (!p.ok()) return Fail(cmd, p.status());
    o.platform = *p;
  }
  if (!accel.empty()) {
    if (accel != "kvm" && accel != "tcg")
      return Fail(cmd, absl::InvalidArgumentError("--accel: kvm or tcg"));
    o.kvm = accel == "kvm";
  }
  for (auto [text, out] : {std::pair{&libvirt_version, &o.libvirt_version},
                           std::pair{&qemu_version, &o.qemu_version}}) {
    if (text->empty()) continue;
    auto v = appliance::launch::Version::Parse(*text);
    if (!v.ok()) return Fail(cmd, v.status());
    *out = *v;
  }
  o.timeout = std::chrono::seconds(timeout);
  // Bounds: wait defaults to 10 minutes (a TCG boot here takes about one), the rest to 2.
  const std::chrono::seconds bound = o.timeout.count() > 0
                                         ? o.timeout + std::chrono::seconds(cmd == "wait" ? 10 : 0)
                                         : std::chrono::seconds(cmd == "wait" ? 610 : 120);
  StartWatchdog(cmd, bound);

  absl::StatusOr<nlohmann::ordered_json> result;
  if (cmd == "define" && o.dump_xml && o.libvirt_version && o.qemu_version) {
    auto xml = appliance::launch::OfflineXml(o);
    if (!xml.ok()) return Fail(cmd, xml.status());
    std::fputs(xml->c_str(), stdout);
    return 0;
  }
  auto launcher = Launcher::Open(o.connect);
  if (!launcher.ok()) return Fail(cmd, launcher.status());
  if (cmd == "probe") {
    result = (*launcher)->Probe(o);
  } else if (cmd == "define" && o.dump_xml) {
    auto xml = (*launcher)->Xml(o);
    if (!xml.ok()) return Fail(cmd, xml.status());
    std::fputs(xml->c_str(), stdout);
    return 0;
  } else if (cmd == "define") {
    result = (*launcher)->Define(o);
  } else if (cmd == "start") {
    result = (*launcher)->Start(o);
  } else if (cmd == "wait") {
    result = (*launcher)->Wait(o);
  } else if (cmd == "stop") {
    result = (*launcher)->Stop(o);
  } else if (cmd == "undefine") {
    result = (*launcher)->Undefine(o);
  } else {
    result = (*launcher)->Status(o);
  }
  if (!result.ok()) return Fail(cmd, result.status());
  const std::string out = json ? result->dump(2) + "\n" : Text(cmd, *result);
  std::fputs(out.c_str(), stdout);
  return 0;
}
